"""What a user sees: reprs with the parameters they set, progress on request, clean logs off a terminal."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sersk import augment, make_pipeline
from sersk.augment import AugmentingResampler
from sersk.utils.synthetic import make_tone

ESC = "\x1b["


def tiny_pipeline(**kwargs):
    pipe = make_pipeline(n_augmentations=1, max_epochs=2, device="cpu", random_state=0, **kwargs)
    return pipe.set_params(net__module__filters=(4, 4, 8, 8), net__module__hidden_size=8)


@pytest.fixture
def data():
    tones = [make_tone(f, 0.5) for f in (200.0, 210.0, 1800.0, 1900.0)]
    return tones, np.array(["low", "low", "high", "high"])


def test_repr_shows_the_parameters_a_user_set():
    text = repr(make_pipeline())
    assert "CNNLSTMClassifier(verbose=0)" in text
    for private in ("_params_to_validate", "callbacks=None", "use_caching", "iterator_train="):
        assert private not in text
    assert "AugmentingResampler(n_augmentations=5" in repr(make_pipeline(n_augmentations=5))


def test_verbose_fit_off_a_terminal_prints_progress_without_bars_or_colours(data, capsys):
    tiny_pipeline(verbose=1).fit(*data)
    out, err = capsys.readouterr()
    assert "train_loss" in out and "(step 1 of 4)" in out  # the epoch table and the steps' times
    assert ESC not in out and ESC not in err
    assert "augmenting" not in err and "it/s" not in err  # no progress bar in a log
    tiny_pipeline().fit(*data)
    assert capsys.readouterr() == ("", "")  # verbose=0: silent


def test_on_a_terminal_the_epoch_table_has_colours_and_a_progress_bar(data, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    pipe = tiny_pipeline(verbose=1).fit(*data)
    assert ESC in capsys.readouterr().out
    assert "progress_bar" in dict(pipe[-1].callbacks_)


def test_augmentation_shows_one_bar_over_all_copies(data, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    X_res, _ = AugmentingResampler(n_augmentations=3, random_state=0, verbose=True).fit_resample(*data)
    X_res[0:5], X_res[5:12]  # computed in two calls, as LogMelTransformer's chunks are
    err = capsys.readouterr().err
    assert "augmenting" in err and "12/12" in err
    assert "/5" not in err and "/7" not in err  # no bar per call


def test_the_augmentation_bar_counts_a_copy_read_twice_once(data, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    X_res, _ = AugmentingResampler(n_augmentations=3, random_state=0, verbose=True).fit_resample(*data)
    X_res[0:6], X_res[[0, 1, 1]]  # half the copies, then three reads of two of them
    assert X_res._bar.n == 6  # still open: a bar counting reads would have reached 9
    X_res[6:12]
    assert "12/12" in capsys.readouterr().err
    assert X_res._bar is None  # closed once every copy has been computed


def test_threads_reading_copies_at_once_share_one_bar(data, capsys, monkeypatch):
    import re
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    X_res, _ = AugmentingResampler(n_augmentations=25, random_state=0, verbose=True).fit_resample(*data)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: X_res[[i, i]], range(100)))  # each copy by one thread, twice over
    assert X_res._bar is None  # every copy counted once (the bar closes at 100 of 100)
    err = capsys.readouterr().err
    assert "100/100" in err and not re.search(r"\b(10[1-9]|1[1-9]\d)/100", err)  # none counted twice

    class Recorder:  # the bar's updates themselves: a count past the total would close the bar early instead
        bars: list = []

        def __init__(self, total, **kwargs):
            self.total, self.n, self.closed = total, 0, 0
            Recorder.bars.append(self)

        def update(self, n):
            self.n += n

        def close(self):
            self.closed += 1

    monkeypatch.setattr(augment, "tqdm", Recorder)
    X_res, _ = AugmentingResampler(n_augmentations=25, random_state=0, verbose=True).fit_resample(*data)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: X_res[[i, i]], range(100)))
    (bar,) = Recorder.bars
    assert (bar.n, bar.closed) == (100, 1)


def test_predict_files_shows_its_bar_on_a_terminal_only(data, tmp_path, capsys, monkeypatch):
    import soundfile as sf

    from sersk.batch import predict_files

    pipe = tiny_pipeline().fit(*data)
    paths = []
    for i, tone in enumerate(data[0]):
        paths.append(str(tmp_path / f"{i}.wav"))
        sf.write(paths[-1], tone, 16000)
    capsys.readouterr()
    predict_files(pipe, paths, verbose=True)
    assert "predicting" not in capsys.readouterr().err  # off a terminal: no bar in a log
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    predict_files(pipe, paths, verbose=True)
    assert "4/4" in capsys.readouterr().err


def test_on_a_terminal_no_color_leaves_the_epoch_table_plain(data, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")  # no-color.org; was ignored
    tiny_pipeline(verbose=1).fit(*data)
    out = capsys.readouterr().out
    assert "train_loss" in out and ESC not in out


class _Writer:
    """A GUI's or a logger's stand-in for a stream: write and flush, no isatty."""

    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)
        return len(text)

    def flush(self):
        pass


@pytest.mark.parametrize("streams", ["None", "writers"])
def test_verbose_work_runs_without_terminal_streams(streams, data, tmp_path, monkeypatch):
    """pythonw, services and frozen windowed apps have sys.stdout and sys.stderr None; GUIs and log
    redirectors put writers without isatty there. A verbose fit raised AttributeError (and so did
    the bars of decoding, augmentation and predict_files); plain skorch fits there."""
    import soundfile as sf

    from sersk.batch import predict_files

    paths = []
    for i, tone in enumerate(data[0]):
        paths.append(str(tmp_path / f"{i}.wav"))
        sf.write(paths[-1], tone, 16000)
    out, err = (None, None) if streams == "None" else (_Writer(), _Writer())
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    pipe = tiny_pipeline(verbose=1).fit(paths, data[1])
    assert len(predict_files(pipe, paths, verbose=True).labels) == 4
    if out is not None:
        assert "train_loss" in "".join(out.parts) and ESC not in "".join(out.parts)


def test_a_network_on_its_own_shows_the_parameters_a_user_set():
    from sersk import CNNLSTMClassifier

    assert repr(CNNLSTMClassifier(lr=0.01, random_state=1)) == "CNNLSTMClassifier(lr=0.01, random_state=1)"
    assert repr(CNNLSTMClassifier(lr=0.01)) != repr(CNNLSTMClassifier(lr=0.001))  # skorch's showed the module only


class _KernelStream(_Writer):
    """A Jupyter kernel's stream (ipykernel's OutStream): no terminal, but shown as it is written."""


_KernelStream.__module__ = "ipykernel.iostream"


class ZMQInteractiveShell:  # what skorch's ProgressBar takes for a notebook
    pass


def test_in_a_notebook_a_verbose_fit_shows_its_bars(data, monkeypatch):
    """Jupyter's streams are no terminal: sersk showed no bar there at all. skorch's ProgressBar asks
    for a notebook's widget bars in any notebook, which fail without ipywidgets (ImportError: IProgress
    not found): it is told to draw the text bars sersk's own bars fall back to."""
    import builtins

    err, out = _KernelStream(), _KernelStream()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(builtins, "get_ipython", ZMQInteractiveShell, raising=False)
    pipe = tiny_pipeline(verbose=1).fit(*data)
    shown = "".join(err.parts)
    assert "augmenting" in shown and "4/4" in shown  # the copies' bar
    assert "it/s]" in shown  # skorch's bar over an epoch's batches (sersk's count files and copies)
    assert dict(pipe[-1].callbacks_)["progress_bar"].detect_notebook is False  # tqdm.auto chose text bars here
    assert ESC in "".join(out.parts)  # a notebook shows the table's colours


def test_importing_sersk_in_a_notebook_without_ipywidgets_warns_of_nothing():
    """tqdm.auto warns "IProgress not found" when imported in a notebook without ipywidgets: every
    notebook importing sersk showed it, though sersk's bars work as text there."""
    import subprocess

    code = (
        "import sys, types, warnings\n"
        "class ZMQInteractiveShell:\n"  # a kernel's shell, as tqdm.autonotebook asks
        "    config = {'IPKernelApp': {}}\n"
        "sys.modules['IPython'] = types.SimpleNamespace(get_ipython=ZMQInteractiveShell)\n"
        "sys.modules['ipykernel.zmqshell'] = types.ModuleType('ipykernel.zmqshell')\n"
        "sys.modules['ipywidgets'] = None\n"  # not installed
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import sersk.io\n"
        "print([str(w.message) for w in caught])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "IProgress" not in done.stdout
