"""Figures: each function returns a Figure with the expected axes and labels; PNGs are written atomically."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from sersk.plotting import (
    plot_class_distribution,
    plot_confusion_matrix,
    plot_log_mels,
    plot_training_history,
    plot_waveform,
    save_figure,
)
from sersk.utils.synthetic import make_tone

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _no_pyplot_figures():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plotting function created a pyplot figure"


def test_class_distribution_counts_each_class():
    fig = plot_class_distribution(["anger", "sadness", "anger", "boredom", "anger"])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["anger", "boredom", "sadness"]
    assert [p.get_height() for p in ax.patches] == [3, 1, 1]
    assert ax.get_ylabel() == "clips" and "5 clips" in ax.get_title()


def test_class_distribution_names_a_missing_label():
    with pytest.raises(ValueError, match="NoneType, str.*missing"):
        plot_class_distribution(["anger", None, "anger"])


def test_class_distribution_draws_on_a_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_class_distribution(["a", "b"], ax=ax) is fig


def test_waveform_has_a_time_axis_in_seconds():
    fig = plot_waveform(make_tone(440, 0.5), sample_rate=16000, title="03a01Wa.wav")
    ax = fig.axes[0]
    (line,) = ax.get_lines()
    assert line.get_xdata()[-1] == pytest.approx(0.5, abs=1e-3)
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "amplitude" and ax.get_title() == "03a01Wa.wav"
    with pytest.raises(ValueError, match="1-D"):
        plot_waveform(np.zeros((2, 10)))


def test_log_mels_side_by_side_with_one_colour_bar():
    mels = [np.random.default_rng(i).normal(size=(128, 20 + 10 * i)).astype(np.float32) for i in range(3)]
    fig = plot_log_mels(mels, titles=["a", "b", "c"])
    assert len(fig.axes) == 4  # three spectrograms and a colour bar
    for ax, m, title in zip(fig.axes[:3], mels, "abc"):
        (image,) = ax.get_images()
        assert image.get_array().shape == m.shape  # bands on y, frames on x
        assert ax.get_xlabel() == "time (s)" and ax.get_title() == title
        left, right, _, _ = image.get_extent()  # frame j at the centre of its window, in seconds
        assert left == pytest.approx((2048 / 2 - 512 / 2) / 16000)
        assert right - left == pytest.approx(m.shape[1] * 512 / 16000)
    longest = ((40 - 1) * 512 + 2048) / 16000
    assert all(ax.get_xlim() == pytest.approx((0, longest)) for ax in fig.axes[:3])  # one common time axis
    assert fig.axes[0].get_ylabel() == "mel band"
    assert len({im.get_clim() for ax in fig.axes[:3] for im in ax.get_images()}) == 1  # shared scale
    with pytest.raises(ValueError, match="titles"):
        plot_log_mels(mels, titles=["only one"])


def test_training_history_two_panels_and_missing_keys_skipped():
    history = [
        {"epoch": 1, "train_loss": 1.5, "valid_loss": 1.7, "train_acc": 0.3, "valid_acc": 0.25},
        {"epoch": 2, "train_loss": 1.1, "valid_loss": 1.4, "train_acc": 0.5, "valid_acc": 0.4},
    ]
    fig = plot_training_history(history)
    loss, acc = fig.axes
    assert [line.get_label() for line in loss.get_lines()] == ["training", "validation"]
    assert list(loss.get_lines()[0].get_ydata()) == [1.5, 1.1]
    assert loss.get_ylabel() == "loss" and acc.get_ylabel() == "accuracy" and loss.get_xlabel() == "epoch"
    no_valid = plot_training_history([{k: v for k, v in row.items() if not k.startswith("valid")} for row in history])
    assert [line.get_label() for line in no_valid.axes[0].get_lines()] == ["training"]
    only_loss = plot_training_history([{"epoch": 1, "train_loss": 0.7}])
    assert only_loss.axes[1].get_lines() == [] and "no accuracy" in only_loss.axes[1].texts[0].get_text()
    long = plot_training_history([{"epoch": e, "train_loss": 1 / e} for e in range(1, 101)])
    left, right = long.axes[0].get_xlim()
    assert -6 < left < 1 and 100 < right < 106  # the epochs and a margin, not ticks fixed beyond them (-20, 120)


def test_training_history_of_a_skorch_net():
    from sersk import CNNLSTMClassifier

    rng = np.random.default_rng(0)
    X = [rng.normal(size=(16, 20)).astype("float32") for _ in range(8)]
    net = CNNLSTMClassifier(module__filters=(2, 2), module__pools=((2, 2), (2, 2)), module__hidden_size=4,
                            max_epochs=2, verbose=0, device="cpu", random_state=0).fit(X, ["a", "b"] * 4)
    fig = plot_training_history(net.history)
    assert [len(line.get_xdata()) for line in fig.axes[0].get_lines()] == [2]  # train only, 2 epochs
    assert fig._suptitle is None
    titled = plot_training_history(net.history, title="Training, leave-one-speaker-out: test speaker 03")
    assert titled._suptitle.get_text() == "Training, leave-one-speaker-out: test speaker 03"


def test_confusion_matrix_uses_the_given_label_order():
    y_true = ["anger", "anger", "sadness", "boredom"]
    y_pred = ["anger", "sadness", "sadness", "anger"]
    fig = plot_confusion_matrix(y_true, y_pred, labels=["sadness", "anger", "boredom"], title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["sadness", "anger", "boredom"]
    assert ax.get_xlabel() == "Predicted label" and ax.get_title() == "t"
    # rotated about their right end, so that long names end under their own column
    assert {(t.get_horizontalalignment(), t.get_rotation_mode()) for t in ax.get_xticklabels()} == {("right", "anchor")}
    (image,) = ax.get_images()
    assert image.get_array().tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 0]]
    colorbar = fig.axes[1]
    assert colorbar.get_ylabel() == "clips"
    ticks = [t for t in colorbar.get_yticks() if colorbar.get_ylim()[0] <= t <= colorbar.get_ylim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)  # counts: integer ticks only
    normalized_fig = plot_confusion_matrix(y_true, y_pred, normalize="true")
    normalized = normalized_fig.axes[0].get_images()[0]
    assert np.allclose(normalized.get_array().sum(axis=1), 1)
    assert normalized_fig.axes[1].get_ylabel() == "fraction of the true class"
    with pytest.raises(ValueError, match="normalize"):
        plot_confusion_matrix(y_true, y_pred, normalize="rows")



def test_a_long_title_stays_within_a_narrow_confusion_matrix():
    title = "LOSO pooled over 3 of 10 speakers: accuracy 75.00 %, UAR 70.00 % (120 clips)"
    fig = plot_confusion_matrix(["a", "b"], ["a", "b"], title=title)  # two classes: a narrow figure
    fig.canvas.draw()
    extent = fig.axes[0].title.get_window_extent(fig.canvas.get_renderer())
    assert 0 <= extent.x0 and extent.x1 <= fig.bbox.width  # wrapped, not cut at both sides


def test_save_figure_writes_a_png_atomically(tmp_path, monkeypatch):
    path = tmp_path / "classes.png"
    assert save_figure(plot_class_distribution(["a", "b"]), path) == path
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert os.stat(path).st_mode & 0o044  # readable by others, like any file (mkstemp makes 0600)
    before = path.read_bytes()

    def failing_savefig(self, *args, **kwargs):
        args[0].write(b"\x89PNG partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", failing_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(plot_class_distribution(["c"]), path)
    assert path.read_bytes() == before  # the old file survives
    assert [p.name for p in tmp_path.iterdir()] == ["classes.png"]  # no temporary file left


def test_save_figure_writes_the_format_its_suffix_names(tmp_path):
    fig = plot_class_distribution(["a", "b"])
    assert save_figure(fig, tmp_path / "classes.pdf").read_bytes()[:5] == b"%PDF-"  # was PNG bytes in a .pdf
    assert b"<svg" in save_figure(fig, tmp_path / "classes.svg").read_bytes()[:500]
    with pytest.raises(ValueError, match=r"cannot write \.xyz files"):
        save_figure(fig, tmp_path / "classes.xyz")
    assert not (tmp_path / "classes.xyz").exists()


def test_a_notebook_shows_each_figure_as_a_picture():
    """IPython draws a Figure only once pyplot's inline backend has started, which figures made
    without pyplot never start: a notebook showed "<Figure size 400x350 with 1 Axes>" instead."""
    import pickle

    history = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}]
    figures = [
        plot_class_distribution(["a", "a", "b"]),
        plot_waveform(make_tone(200.0, 0.1)),
        plot_log_mels(np.zeros((128, 20), dtype=np.float32)),
        plot_training_history(history),
        plot_confusion_matrix(["a", "b"], ["a", "a"]),
    ]
    for fig in figures:
        assert fig._repr_png_().startswith(PNG_MAGIC)
        assert repr(fig).startswith("<Figure size")
        assert repr(pickle.loads(pickle.dumps(fig))) == repr(fig)
