"""The versions an estimator was pickled by, and a warning when other versions unpickle it."""

from __future__ import annotations

import warnings
from typing import Any

from .. import __version__
from ..exceptions import InconsistentVersionWarning


def _library_versions() -> dict[str, str]:
    """The releases a fitted model's behaviour depends on: sersk's, and those of the libraries whose
    objects it pickles (a local tag such as torch's ``+cu130`` dropped: the same release)."""
    import sklearn
    import skorch
    import torch

    return {
        "sersk": __version__, "scikit-learn": sklearn.__version__, "skorch": skorch.__version__,
        "torch": torch.__version__.split("+")[0],
    }


class RecordsSerskVersion:
    """Mixin for sersk's estimators: pickles record the versions of sersk, scikit-learn, skorch and
    torch, and unpickling under others warns, naming them, as scikit-learn does for its own estimators
    (which sersk's, defined outside ``sklearn``, are not). Pickles made before the versions were
    recorded load without a warning; those that recorded sersk's only are compared on it."""

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_sersk_version": __version__, "_library_versions": _library_versions()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        sersk_version = state.pop("_sersk_version", None)
        saved = state.pop("_library_versions", None) or ({"sersk": sersk_version} if sersk_version else {})
        here = _library_versions()
        changed = [name for name, version in saved.items() if here.get(name, version) != version]
        if changed:
            warnings.warn(
                InconsistentVersionWarning(
                    f"a model saved by {', '.join(f'{name} {saved[name]}' for name in changed)} is loaded by "
                    f"{', '.join(f'{name} {here[name]}' for name in changed)}: it may not predict as it did; fit it "
                    "again with these versions, or install those it was saved by to use it"
                ),
                stacklevel=1,  # one place for every estimator of a model: Python shows it once, not once per step
            )
        super().__setstate__(state)
