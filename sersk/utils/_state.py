"""Putting an object's attributes back as they were, for estimators that leave nothing changed on an
error; and sersk's locks, released in a child made by ``fork()``."""

from __future__ import annotations

import os
from typing import Any


def restore_attributes(obj: Any, state: dict[str, Any]) -> None:
    """Set ``obj``'s attributes to ``state``: the saved ones first, then the others removed, so that
    an interrupt in between leaves every saved attribute in place."""
    attributes = vars(obj)
    attributes.update(state)
    for name in attributes.keys() - state.keys():
        del attributes[name]


def released_in_forked_children(*locks: Any) -> None:
    """Release ``locks`` in each child process made by ``fork()``: a lock another thread held at the
    fork stayed held there, by a thread the child does not have, and the child waited for it for
    ever (a ``multiprocessing`` fork while a thread augmented). As the standard library does for its
    own locks (``logging``, ``concurrent.futures``)."""
    if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
        os.register_at_fork(after_in_child=lambda: [lock._at_fork_reinit() for lock in locks])
