"""Whether output reaches a terminal: sersk shows progress bars and colours there only."""

from __future__ import annotations

import os
import sys
from typing import Any


def on_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal; False for None (``pythonw``, a service), a stream without
    ``isatty`` (a GUI's or a logger's writer) and a closed one."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def bar_disabled(verbose: bool = True) -> bool:
    """tqdm's ``disable`` for a bar on stderr: shown only when asked and on a terminal (tqdm's own
    ``disable=None`` writes to a stderr that is None, or lacks ``isatty``, and fails)."""
    return not (verbose and on_terminal(sys.stderr))


def colours_wanted() -> bool:
    """Whether stdout takes colour codes: a terminal, and no ``NO_COLOR`` set (no-color.org)."""
    return on_terminal(sys.stdout) and not os.environ.get("NO_COLOR")
