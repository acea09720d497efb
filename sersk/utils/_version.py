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


def version_change(saved: dict[str, str]) -> tuple[str, str] | None:
    """The recorded versions that differ from those installed here, written out as (saved, here),
    e.g. ("scikit-learn 1.9.1", "scikit-learn 1.10.0"); None when none differ."""
    here = _library_versions()
    changed = [name for name, version in saved.items() if here.get(name, version) != version]
    if not changed:
        return None
    return ", ".join(f"{name} {saved[name]}" for name in changed), ", ".join(f"{name} {here[name]}" for name in changed)


def recorded_versions(state: dict[str, Any]) -> dict[str, str]:
    """The versions a pickled estimator's state records (empty for a pickle of before sersk recorded
    them; sersk's only for one that recorded sersk's only)."""
    sersk_version = state.get("_sersk_version")
    return state.get("_library_versions") or ({"sersk": sersk_version} if sersk_version else {})


class RecordsSerskVersion:
    """Mixin for sersk's estimators: pickles record the versions of sersk, scikit-learn, skorch and
    torch, and unpickling under others warns, naming them, as scikit-learn does for its own estimators
    (which sersk's, defined outside ``sklearn``, are not). Pickles made before the versions were
    recorded load without a warning; those that recorded sersk's only are compared on it."""

    def __getstate__(self) -> dict[str, Any]:
        # a mixin: the estimator base after it (BaseEstimator, skorch's NeuralNet) defines both methods
        state: dict[str, Any] = super().__getstate__()  # type: ignore[assignment]
        return {**state, "_sersk_version": __version__, "_library_versions": _library_versions()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        change = version_change(recorded_versions(state))
        state.pop("_sersk_version", None)
        state.pop("_library_versions", None)
        if change:
            warnings.warn(
                InconsistentVersionWarning(
                    f"a model saved by {change[0]} is loaded by {change[1]}: it may not predict as it did; fit it "
                    "again with these versions, or install those it was saved by to use it"
                ),
                stacklevel=1,  # one place for every estimator of a model: Python shows it once, not once per step
            )
        super().__setstate__(state)  # type: ignore[misc]
