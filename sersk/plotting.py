"""Figures of the data, the features, the training and the results, as matplotlib Figures.

Every function builds its own ``matplotlib.figure.Figure`` on an Agg canvas and returns it:
nothing goes through ``pyplot``, so no global figure state is created or leaked, and no display is
needed. A notebook shows a returned figure as a picture.
[`save_figure`][sersk.plotting.save_figure] writes a figure to a PNG file atomically.

Examples
--------
>>> from sersk.plotting import plot_class_distribution, save_figure
>>> fig = plot_class_distribution(["anger", "anger", "boredom"])
>>> save_figure(fig, "class_distribution.png")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import ConfusionMatrixDisplay

from . import _recipe
from .utils.files import atomic_output

__all__ = [
    "plot_class_distribution",
    "plot_confusion_matrix",
    "plot_log_mels",
    "plot_training_history",
    "plot_waveform",
    "save_figure",
]


class _ShownFigure(Figure):
    """A Figure that a notebook shows as a picture: IPython draws a Figure only once pyplot's inline
    backend has started, which a figure made without pyplot never starts ("<Figure size ...>")."""

    def __repr__(self) -> str:
        return super().__repr__().replace(type(self).__name__, "Figure", 1)

    def _repr_png_(self) -> bytes:
        png = io.BytesIO()
        self.savefig(png, format="png", bbox_inches="tight")
        return png.getvalue()


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A Figure on its own Agg canvas (no pyplot, no global state)."""
    fig = _ShownFigure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        try:
            return cast(Figure, ax.get_figure(root=True)), ax  # matplotlib >= 3.10; an Axes has a figure
        except TypeError:
            return ax.figure.figure, ax  # a (sub)figure's ``figure`` is the root figure
    fig = _new_figure(figsize)
    return fig, fig.add_subplot()


def plot_class_distribution(labels: npt.ArrayLike, ax: Axes | None = None) -> Figure:
    """Bar chart of the number of clips per class.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        The label of each clip.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when None.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding ``ax``.

    Examples
    --------
    >>> from sersk.plotting import plot_class_distribution
    >>> fig = plot_class_distribution(["anger", "boredom", "anger"])
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['anger', 'boredom']
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels has shape {labels.shape}; expected a non-empty 1-D array of labels")
    try:
        classes, counts = np.unique(labels, return_counts=True)
    except TypeError:  # labels that cannot be sorted together, such as a None among strings
        kinds = sorted({type(label).__name__ for label in labels.tolist()})
        raise ValueError(
            f"labels mix types that cannot be ordered ({', '.join(kinds)}); is a label missing?"
        ) from None
    fig, ax = _figure_and_axes(ax, (max(4.0, 0.9 * len(classes) + 1.5), 3.5))
    names = [str(c) for c in classes]
    bars = ax.bar(names, counts, color="tab:blue")
    ax.bar_label(bars, padding=2)
    ax.set_xlabel("class")
    ax.set_ylabel("clips")
    ax.set_title(f"Class distribution ({labels.size} clips)")
    ax.set_ylim(0, counts.max() * 1.15)
    if len(classes) > 4:
        ax.tick_params(axis="x", labelrotation=30)
    return fig


def plot_waveform(
    waveform: Any, sample_rate: int = _recipe.SAMPLE_RATE, title: str | None = None, ax: Axes | None = None
) -> Figure:
    """Amplitude of one clip over time.

    Parameters
    ----------
    waveform : array-like of shape (n_samples,)
        A mono waveform.
    sample_rate : int, default=16000
        Its rate in Hz, for the time axis.
    title : str, optional
        Axes title.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when None.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding ``ax``.

    Examples
    --------
    >>> import numpy as np
    >>> from sersk.plotting import plot_waveform
    >>> fig = plot_waveform(np.zeros(1600), title="silence")
    >>> fig.axes[0].get_xlabel()
    'time (s)'
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size == 0:
        raise ValueError(f"waveform has shape {waveform.shape}; expected a non-empty 1-D array")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate={sample_rate}; expected a positive rate in Hz")
    fig, ax = _figure_and_axes(ax, (8.0, 2.8))
    t = np.arange(waveform.size) / sample_rate
    ax.plot(t, waveform, linewidth=0.5, color="tab:blue")
    ax.set_xlim(0, waveform.size / sample_rate)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude")
    if title is not None:
        ax.set_title(title, wrap=True)  # a long file name wraps within the figure
    return fig


def plot_log_mels(
    log_mels: Sequence[Any] | np.ndarray,
    titles: Sequence[str] | None = None,
    *,
    sample_rate: int = _recipe.SAMPLE_RATE,
    hop_length: int = _recipe.HOP_LENGTH,
    n_fft: int = _recipe.N_FFT,
) -> Figure:
    """A few log-mel spectrograms side by side: mel bands upwards, time in seconds to the right.

    All panels share one time axis and one colour scale, so their lengths and levels compare.

    Parameters
    ----------
    log_mels : sequence of array-like of shape (n_mels, n_frames_i)
        Spectrograms, e.g. the output of [`LogMelTransformer`][sersk.features.LogMelTransformer].
    titles : sequence of str, optional
        One title per spectrogram.
    sample_rate, hop_length, n_fft : int, default=16000, 512, 2048
        The settings the spectrograms were computed with, to place frame ``j`` at the centre of
        its window, ``(j * hop_length + n_fft / 2) / sample_rate`` seconds.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes per spectrogram, then a colour bar.

    Examples
    --------
    >>> import numpy as np
    >>> from sersk.plotting import plot_log_mels
    >>> fig = plot_log_mels([np.zeros((128, 40)), np.ones((128, 60))], titles=["a", "b"])
    >>> len(fig.axes), fig.axes[0].get_xlabel()  # two spectrograms and the colour bar
    (3, 'time (s)')
    """
    if isinstance(log_mels, np.ndarray) and log_mels.dtype != object and log_mels.ndim == 2:
        log_mels = [log_mels]
    arrays = [np.asarray(m, dtype=np.float32) for m in log_mels]
    if not arrays:
        raise ValueError("log_mels is empty; expected at least one (n_mels, n_frames) array")
    for i, m in enumerate(arrays):
        if m.ndim != 2 or 0 in m.shape:
            raise ValueError(f"log-mel {i} has shape {m.shape}; expected a non-empty (n_mels, n_frames) array")
    titles = None if titles is None else list(titles)  # by position: a pandas Series indexes by label
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"titles holds {len(titles)} and log_mels {len(arrays)}; give one title per spectrogram")
    if min(sample_rate, hop_length, n_fft) <= 0:
        raise ValueError(f"sample_rate={sample_rate}, hop_length={hop_length}, n_fft={n_fft}; expected positive numbers")
    finite = np.concatenate([m[np.isfinite(m)] for m in arrays])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    fig = _new_figure((3.2 * len(arrays) + 1.0, 3.4))
    axes = fig.subplots(1, len(arrays), squeeze=False, sharex=True, sharey=True)[0]
    first = (n_fft / 2 - hop_length / 2) / sample_rate  # left edge of frame 0's pixel
    longest = max((m.shape[1] - 1) * hop_length + n_fft for m in arrays) / sample_rate
    image = None
    for i, (ax, m) in enumerate(zip(axes, arrays)):
        extent = (first, first + m.shape[1] * hop_length / sample_rate, -0.5, m.shape[0] - 0.5)
        image = ax.imshow(m, origin="lower", aspect="auto", interpolation="nearest", cmap="magma",
                          vmin=vmin, vmax=vmax, extent=extent)
        ax.set_xlabel("time (s)")
        if i == 0:
            ax.set_ylabel("mel band")
        if titles is not None:
            ax.set_title(str(titles[i]))
    axes[0].set_xlim(0, longest)
    assert image is not None  # arrays is not empty
    fig.colorbar(image, ax=list(axes), label="ln power (natural log, not dB)")
    return fig


def _history_rows(history: Any) -> list[Mapping[str, Any]]:
    if hasattr(history, "history_"):  # a fitted classifier: its History
        history = history.history_
    rows = list(history)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            kind = type(row).__name__
            raise ValueError(f"history entry {i} is a {kind}; expected one dict per epoch (skorch History)")
    return rows


def plot_training_history(history: Any, title: str | None = None) -> Figure:
    """Loss and accuracy per epoch, on training and validation data, in two panels.

    Parameters
    ----------
    history : skorch.History or sequence of dict
        One dict per epoch (skorch's ``net.history``) with any of the keys ``train_loss``,
        ``valid_loss``, ``train_acc``, ``valid_acc`` (and ``epoch``). A key missing from every
        epoch leaves its line out; a panel with no line says so.
    title : str, optional
        The figure's title, above both panels (which run, which fold).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Two axes: loss (left), accuracy (right).

    Examples
    --------
    >>> from sersk.plotting import plot_training_history
    >>> fig = plot_training_history([{"epoch": 1, "train_loss": 1.2, "valid_loss": 1.4},
    ...                              {"epoch": 2, "train_loss": 0.9, "valid_loss": 1.3}])
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['training', 'validation']
    """
    rows = _history_rows(history)
    if not rows:
        raise ValueError("history is empty: no epoch was recorded")
    epochs = np.array([row.get("epoch", i + 1) for i, row in enumerate(rows)], dtype=float)
    fig = _new_figure((9.0, 3.4))
    axes = fig.subplots(1, 2)
    panels = (("loss", "train_loss", "valid_loss"), ("accuracy", "train_acc", "valid_acc"))
    for ax, (name, train_key, valid_key) in zip(axes, panels):
        drawn = False
        for key, label, style in ((train_key, "training", "o-"), (valid_key, "validation", "s--")):
            values = np.array([np.nan if row.get(key) is None else float(row[key]) for row in rows])
            if np.isnan(values).all():
                continue
            ax.plot(epochs, values, style, label=label)
            drawn = True
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name.capitalize())
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
        else:  # whole epochs, within the data (fixing the automatic ticks widened the axis)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if drawn:
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {name} recorded", ha="center", va="center", transform=ax.transAxes)
        if name == "accuracy" and drawn:
            ax.set_ylim(-0.02, 1.02)
    if title is not None:
        fig.suptitle(title)
    return fig


def plot_confusion_matrix(
    y_true: Any,
    y_pred: Any,
    labels: Sequence[Any] | None = None,
    normalize: str | None = None,
    title: str | None = None,
) -> Figure:
    """Confusion matrix of predictions, drawn by scikit-learn's ``ConfusionMatrixDisplay``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    labels : sequence, optional
        Row and column order; by default the sorted labels occurring in either.
    normalize : {"true", "pred", "all"}, optional
        Normalise counts over the true labels (rows: each row's diagonal is that class's recall),
        the predictions (columns) or everything; counts when None.
    title : str, optional
        Axes title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The matrix axes and its colour bar (labelled; integer ticks for counts).

    Examples
    --------
    >>> from sersk.plotting import plot_confusion_matrix
    >>> fig = plot_confusion_matrix(["a", "b", "b"], ["a", "b", "a"], normalize="true")
    >>> fig.axes[0].get_ylabel()
    'True label'
    """
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize={normalize!r}; expected None, 'true', 'pred' or 'all'")
    n_labels = len(labels) if labels is not None else len(np.union1d(np.asarray(y_true), np.asarray(y_pred)))
    size = max(4.5, 0.75 * n_labels + 2.5)
    fig, ax = _figure_and_axes(None, (size + 1.0, size))
    display = ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=labels,
        normalize=normalize,
        ax=ax,
        cmap="Blues",
        xticks_rotation=45,
        values_format=".2f" if normalize else "d",
        colorbar=True,
    )
    # rotated about their right end, long class names end under their own column
    for label in ax.get_xticklabels():
        label.set(horizontalalignment="right", rotation_mode="anchor")
    colorbar = display.im_.colorbar
    if normalize:
        colorbar.set_label({"true": "fraction of the true class", "pred": "fraction of the predictions",
                            "all": "fraction of all clips"}[normalize])
    else:
        colorbar.set_label("clips")
        colorbar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if title is not None:
        ax.set_title(title, wrap=True)  # within the figure: a narrow one (few classes) would cut it
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Write ``fig`` to an image file atomically, in the format its suffix names (PNG by default).

    The image is written to a temporary file in the target's folder and then moved over the
    target with ``os.replace``, so a reader never sees a half-written file and a failed write
    leaves any existing file untouched.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or os.PathLike
        The file to write: ``.png``, ``.pdf``, ``.svg`` or another format matplotlib writes (PNG
        when there is no suffix); its folder is created if need be.
    dpi : int, default=120
        Resolution.

    Returns
    -------
    path : pathlib.Path
        The file written.

    Examples
    --------
    >>> from sersk.plotting import plot_class_distribution, save_figure
    >>> save_figure(plot_class_distribution(["a", "b"]), "classes.png")  # doctest: +SKIP
    PosixPath('classes.png')
    """
    path = Path(os.fspath(path))
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in (supported := fig.canvas.get_supported_filetypes()):
        raise ValueError(f"{str(path)!r}: matplotlib cannot write .{fmt} files; use one of .{', .'.join(sorted(supported))}")
    with atomic_output(path) as fh:
        fig.savefig(fh, format=fmt, dpi=dpi)
    return path
