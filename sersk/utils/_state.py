"""Putting an object's attributes back as they were, for estimators that leave nothing changed on an
error; and sersk's locks and counted blocks across ``fork()``."""

from __future__ import annotations

import os
import threading
from typing import Any


def restore_attributes(obj: Any, state: dict[str, Any]) -> None:
    """Set ``obj``'s attributes to ``state``: the saved ones first, then the others removed, so that
    an interrupt in between leaves every saved attribute in place."""
    attributes = vars(obj)
    attributes.update(state)
    for name in attributes.keys() - state.keys():
        del attributes[name]


def held_across_forks(*locks: Any) -> None:
    """Take ``locks`` before each ``fork()``, and release them after it: in the parent as they are,
    in the child as new ones, as the standard library does for its own (``concurrent.futures``). A
    fork while another thread held one left it held in the child, by a thread the child does not
    have, and the child waited for it for ever (a ``multiprocessing`` fork while a thread augmented);
    taken, what the lock guards is whole at the fork. No sersk code forks while holding one."""
    if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
        os.register_at_fork(
            before=lambda: [lock.acquire() for lock in locks],
            after_in_parent=lambda: [lock.release() for lock in reversed(locks)],
            after_in_child=lambda: [lock._at_fork_reinit() for lock in locks],
        )


class OpenBlocks(threading.local):
    """How many blocks of one kind (a context manager counted across threads) the calling thread has
    open: in a child made by ``fork()``, which has the forking thread only, the count that stays."""

    open = 0
