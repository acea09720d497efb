"""Putting an object's attributes back as they were, for estimators that leave nothing changed on an error."""

from __future__ import annotations

from typing import Any


def restore_attributes(obj: Any, state: dict[str, Any]) -> None:
    """Set ``obj``'s attributes to ``state``: the saved ones first, then the others removed, so that
    an interrupt in between leaves every saved attribute in place."""
    attributes = vars(obj)
    attributes.update(state)
    for name in attributes.keys() - state.keys():
        del attributes[name]
