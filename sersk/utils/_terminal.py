"""Whether output reaches a person: sersk shows progress bars and colours on a terminal and in a
Jupyter notebook only, and the one progress-bar class it uses."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from tqdm import TqdmWarning

with warnings.catch_warnings():  # tqdm's "IProgress not found" in a notebook without ipywidgets: text bars then
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm  # a notebook's widget bars where ipywidgets is installed, text bars elsewhere


def on_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal; False for None (``pythonw``, a service), a stream without
    ``isatty`` (a GUI's or a logger's writer) and a closed one."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def in_notebook(stream: Any) -> bool:
    """Whether ``stream`` is a Jupyter kernel's (Jupyter, JupyterLab, VS Code's and Colab's notebooks
    all run ipykernel): no terminal, but shown to a person as it is written."""
    return type(stream).__module__.startswith("ipykernel.")


def shown_live(stream: Any) -> bool:
    """Whether what is written to ``stream`` is seen as it is written: a terminal or a notebook."""
    return on_terminal(stream) or in_notebook(stream)


def bar_disabled(verbose: bool = True) -> bool:
    """tqdm's ``disable`` for a bar on stderr: shown only when asked, on a terminal or in a notebook
    (tqdm's own ``disable=None`` writes to a stderr that is None, or lacks ``isatty``, and fails)."""
    return not (verbose and shown_live(sys.stderr))


def widget_bars() -> bool:
    """Whether sersk's bars are a notebook's widgets (``tqdm.auto`` chose them: a notebook with
    ipywidgets); skorch's ``ProgressBar`` must be told, as it asks for widgets in any notebook."""
    notebook = sys.modules.get("tqdm.notebook")
    return notebook is not None and issubclass(tqdm, notebook.tqdm)


def colours_wanted() -> bool:
    """Whether stdout takes colour codes: a terminal or a notebook, and no ``NO_COLOR`` set
    (no-color.org)."""
    return shown_live(sys.stdout) and not os.environ.get("NO_COLOR")
