"""The sersk version an estimator was pickled by, and a warning when another version unpickles it."""

from __future__ import annotations

import warnings
from typing import Any

from .. import __version__
from ..exceptions import InconsistentVersionWarning


class RecordsSerskVersion:
    """Mixin for sersk's estimators: pickles record the sersk version, and unpickling under another
    version warns, as scikit-learn does for its own estimators (which sersk's, defined outside
    ``sklearn``, are not). Pickles made before the version was recorded load without a warning."""

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_sersk_version": __version__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.pop("_sersk_version", None)
        if saved is not None and saved != __version__:
            warnings.warn(
                InconsistentVersionWarning(
                    f"a model saved by sersk {saved} is loaded by sersk {__version__}: it may not predict as it did; "
                    f"fit it again with this version, or install sersk {saved} to use it"
                ),
                stacklevel=1,  # one place for every estimator of a model: Python shows it once, not once per step
            )
        super().__setstate__(state)
