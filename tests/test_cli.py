"""The sersk command: train / predict / evaluate / reproduce on a tiny synthetic corpus, and its errors."""

from __future__ import annotations

import errno
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import soundfile as sf
import torch

from sersk import CNNLSTMClassifier, EmotionPipeline, __version__, evaluation
from sersk.cli import main, parse_param
from sersk.persistence import load_model
from sersk.utils.synthetic import make_tone

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A tiny network and one augmented copy per clip on the CPU: each training run takes a second or two.
FAST = [
    "--n-augmentations", "1", "--epochs", "1", "--device", "cpu",
    "--param", "net__module__filters=(4,4,8,8)", "--param", "net__module__hidden_size=8",
]
SPEAKERS = ("03", "08", "09", "10")
EMOTIONS = {"W": ("anger", 1800.0), "T": ("sadness", 220.0)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """16 tones of 0.8 s with Emo-DB names: 4 speakers x 2 emotions x 2 texts, in <root>/wav."""
    wav = tmp_path_factory.mktemp("emodb") / "wav"
    wav.mkdir()
    for i, speaker in enumerate(SPEAKERS):
        for letter, (_, freq) in EMOTIONS.items():
            for text in ("a01", "a02"):
                sf.write(wav / f"{speaker}{text}{letter}a.wav", make_tone(freq * (1 + 0.05 * i), 0.8), 16000)
    return wav


@pytest.fixture(scope="module")
def model(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model.joblib"
    assert main(["train", str(corpus), "--out", str(out), *FAST]) == 0
    return out


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def assert_one_line_error(err: str, *needles: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("sersk: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], err


# ---- train ---------------------------------------------------------------------------------------


def test_train_on_an_emodb_folder_writes_a_loadable_model(model, capsys):
    pipe = joblib.load(model)
    assert isinstance(pipe, EmotionPipeline)
    assert list(pipe.classes_) == ["anger", "sadness"]
    assert pipe[-1].module_.lstm.hidden_size == 8  # --param reached the network
    assert len(pipe[-1].history) == 1
    assert [p.name for p in model.parent.iterdir()] == ["model.joblib"]  # no temporary file left
    assert pipe.get_params()["net__device"] == pipe.get_params()["logmel__device"] == "auto"  # trained with cpu
    # trained with progress shown; the saved model's loader showed a "decoding" bar per chunk predicted
    assert (pipe.verbose, pipe.get_params()["load__verbose"], pipe.get_params()["augment__verbose"]) == (False,) * 3


def test_train_on_a_csv_passes_speakers_for_a_speaker_disjoint_validation(corpus, tmp_path, monkeypatch, capsys):
    rows = [f"{os.path.relpath(p, tmp_path)},{'anger' if 'W' in p.name else 'sadness'},{p.name[:2]}"
            for p in sorted(corpus.glob("*.wav"))]
    csv = write_csv(tmp_path / "data.csv", "path,label,speaker", rows)
    seen = {}
    original = EmotionPipeline.fit

    def spy(self, X, y=None, **kw):
        seen.update(kw, n=len(X))
        return original(self, X, y, **kw)

    monkeypatch.setattr(EmotionPipeline, "fit", spy)
    out = tmp_path / "sub" / "m.joblib"
    assert main(["train", str(csv), "--out", str(out), "--validation-fraction", "0.25", *FAST]) == 0
    assert seen["n"] == 16 and sorted(set(seen["groups"])) == list(SPEAKERS)
    printed = capsys.readouterr().out
    assert "validated on 4 clips of 1 speaker" in printed  # what was held out, rounded up
    assert "training on 16 clips (less those held out to validate), 2 classes" in printed
    assert "preset reference: 1 augmented copy in place of each training clip, 1 epoch, device cpu" in printed  # what it will do
    bare = tmp_path / "bare.joblib"  # a step set to passthrough: the model is still saved
    assert main(["train", str(csv), "--out", str(bare), "--param", "augment=passthrough", *FAST]) == 0
    assert "preset reference: no augmentation, 1 epoch" in capsys.readouterr().out
    assert joblib.load(bare).named_steps["augment"] == "passthrough"
    history = joblib.load(out)[-1].history
    assert history[-1]["valid_loss"] is not None
    assert (4 * history[-1]["valid_acc"]).is_integer()  # the share right of the 4 validation clips


def test_labels_that_differ_only_in_case_are_pointed_out(corpus, tmp_path, capsys):
    rows = [f"{p},{'Anger' if i == 0 else 'anger' if 'W' in p.name else 'sadness'}"
            for i, p in enumerate(sorted(corpus.glob("*.wav")))]
    csv = write_csv(tmp_path / "data.csv", "path,label", rows)
    assert main(["train", str(csv), "--out", str(tmp_path / "m.joblib"), *FAST]) == 0
    captured = capsys.readouterr()
    assert "3 classes (Anger, anger, sadness)" in captured.out
    assert "warning: labels that differ only in case are separate classes: Anger, anger" in captured.err


def test_parse_param():
    assert parse_param("net__module__filters=(4, 4, 8, 8)") == ("net__module__filters", (4, 4, 8, 8))
    assert parse_param("net__device=cpu") == ("net__device", "cpu")
    assert parse_param("augment__noise_p=0.5") == ("augment__noise_p", 0.5)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_param("hidden_size")


# ---- predict and evaluate ------------------------------------------------------------------------


def test_predict_prints_a_table(model, corpus, capsys):
    files = [str(corpus / "03a01Wa.wav"), str(corpus / "08a02Ta.wav")]
    assert main(["predict", str(model), *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["path", "label", "anger", "sadness"]
    assert len(lines) == 3
    for line, path in zip(lines[1:], files):
        cells = line.split()
        assert cells[0] == path and cells[1] in {"anger", "sadness"}
        probs = [float(c) for c in cells[2:]]
        assert all(len(c.split(".")[1]) == 3 for c in cells[2:]) and abs(sum(probs) - 1) < 0.01


def test_predict_given_a_csv_points_to_evaluate(model, tmp_path, capsys):
    table = write_csv(tmp_path / "data.csv", "path,label", ["a.wav,anger"])
    assert main(["predict", str(model), str(table)]) == 2
    assert_one_line_error(capsys.readouterr().err, "is a CSV: predict takes audio files or folders", "sersk evaluate MODEL")


def assert_documented(command: str, *records: dict) -> None:
    """Every field of these output records is named (as `field`) in docs/cli.md's section of ``command``."""
    page = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    section = page.split(f"## sersk {command}\n")[1].split("\n## sersk ")[0]
    missing = sorted({key for record in records for key in record if f"`{key}`" not in section})
    assert not missing, f"docs/cli.md does not name these fields of sersk {command}'s output: {missing}"


def test_predict_json(model, corpus, capsys):
    files = [str(corpus / "03a01Wa.wav"), str(corpus / "09a01Ta.wav")]
    assert main(["predict", str(model), *files, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["errors"] == {}
    assert [r["path"] for r in result["predictions"]] == files
    assert set(result["predictions"][0]) == {"path", "label", "proba"}
    assert set(result["predictions"][0]["proba"]) == {"anger", "sadness"}
    assert_documented("predict", result, result["predictions"][0])
    assert main(["predict", str(model), files[0], "--json", files[1]]) == 0  # options may come between files
    assert json.loads(capsys.readouterr().out) == result
    assert main(["predict", "--json", "--", str(model), *files]) == 0  # "--" ends the options (Python 3.11 dropped it)
    assert json.loads(capsys.readouterr().out) == result
    assert main(["predict", str(model), files[0], "--json", "--", files[1]]) == 0  # and options still come between
    assert json.loads(capsys.readouterr().out) == result


def test_predict_skips_a_broken_file_and_exits_1(model, corpus, tmp_path, capsys):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    good = str(corpus / "03a01Wa.wav")
    assert main(["predict", str(model), good, str(broken), "--skip-errors", "--chunk-size", "2"]) == 1
    captured = capsys.readouterr()
    assert good in captured.out and str(broken) not in captured.out
    assert f"skipped {broken}" in captured.err and "1 of 2 files skipped" in captured.err
    assert "Traceback" not in captured.err
    assert main(["predict", str(model), str(broken), good, str(broken), "--skip-errors"]) == 1  # named twice
    assert "2 of 3 files skipped" in capsys.readouterr().err
    # without --skip-errors the broken file is an error
    assert main(["predict", str(model), good, str(broken)]) == 2
    assert_one_line_error(capsys.readouterr().err, "broken.wav", "(--skip-errors skips such files)")


def test_evaluate_prints_metrics_and_writes_a_confusion_matrix(model, corpus, tmp_path, capsys):
    out_dir = tmp_path / "eval"
    assert main(["evaluate", str(model), str(corpus), "--out-dir", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "UAR" in out and "macro avg" in out  # classification_report
    assert (out_dir / "confusion_matrix.png").read_bytes()[:8] == PNG_MAGIC
    metrics = json.loads((out_dir / "metrics.json").read_text())
    counts = np.array(metrics["confusion_matrix"]["counts"])
    assert metrics["n_files"] == 16 and counts.sum() == 16
    assert metrics["accuracy"] == pytest.approx(np.trace(counts) / 16)
    assert metrics["uar"] == pytest.approx(np.mean(np.diag(counts) / counts.sum(axis=1)))  # every class is present
    assert sorted(p.name for p in out_dir.iterdir()) == ["confusion_matrix.png", "metrics.json"]
    assert metrics["errors"] == {}
    assert_documented("evaluate", metrics, metrics["predictions"][0], metrics["confusion_matrix"])


def test_evaluate_writes_its_metrics_before_printing_the_report(model, corpus, tmp_path, monkeypatch, capsys):
    """A report that cannot be printed (a closed pipe, a stream that cannot encode a label) lost the scores."""
    import sersk.cli

    def unprintable(*args, file=None, **kwargs):
        if file is not None:  # the error line on stderr
            return print(*args, file=file, **kwargs)
        raise UnicodeEncodeError("charmap", "\u0433\u043d\u0435\u0432", 0, 1, "character maps to <undefined>")

    monkeypatch.setattr(sersk.cli, "print", unprintable, raising=False)  # found before the builtin
    assert main(["evaluate", str(model), str(corpus), "--out-dir", str(tmp_path)]) == 2
    assert json.loads((tmp_path / "metrics.json").read_text())["n_files"] == 16
    capsys.readouterr()


def test_train_skips_unreadable_files_when_asked(corpus, tmp_path, capsys):
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    rows = [f"{p},{EMOTIONS[p.name[5]][0]}" for p in sorted(corpus.glob("*.wav"))] + [f"{broken},anger"]
    table = write_csv(tmp_path / "data.csv", "path,label", rows)
    out = tmp_path / "m.joblib"
    assert main(["train", str(table), "--out", str(out), *FAST]) == 2 and not out.exists()
    assert_one_line_error(capsys.readouterr().err, "broken.wav' cannot be decoded", "(--skip-errors trains on the other")
    assert main(["train", str(table), "--out", str(out), "--skip-errors", *FAST]) == 1
    captured = capsys.readouterr()
    assert f"skipped {broken}: audio file" in captured.err and "1 file of 17 skipped; trained on the others" in captured.err
    assert "training on 16 clips" in captured.out and out.exists() and "was skipped" not in captured.err
    table = write_csv(tmp_path / "lost.csv", "path,label", rows[:-1] + [f"{broken},joy"])  # joy's only clip is bad
    assert main(["train", str(table), "--out", str(out), "--skip-errors", *FAST]) == 1
    assert "warning: every clip labelled 'joy' was skipped: the model has no such class" in capsys.readouterr().err


def test_evaluate_skips_unreadable_files_when_asked(model, corpus, tmp_path, capsys):
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    rows = [f"{p},{EMOTIONS[p.name[5]][0]}" for p in sorted(corpus.glob("*.wav"))] + [f"{broken},anger"]
    table = write_csv(tmp_path / "data.csv", "path,label", rows)
    out_dir = tmp_path / "eval"
    assert main(["evaluate", str(model), str(table), "--out-dir", str(out_dir)]) == 2
    assert_one_line_error(capsys.readouterr().err, "broken.wav' cannot be decoded", "(--skip-errors scores the other files)")
    assert main(["evaluate", str(model), str(table), "--out-dir", str(out_dir), "--skip-errors"]) == 1
    err = capsys.readouterr().err
    assert f"skipped {broken}: audio file" in err and "1 file of 17 skipped; the scores are the others'" in err
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["n_files"] == 16 and list(metrics["errors"]) == [str(broken)]
    assert sorted(r["path"] for r in metrics["predictions"]) == sorted(str(p) for p in corpus.glob("*.wav"))
    (tmp_path / "a_file").write_text("")  # a figure that cannot be written is not the data's fault
    assert main(["evaluate", str(model), str(table), "--out-dir", str(tmp_path / "a_file" / "sub"), "--skip-errors"]) == 2
    assert "--skip-errors" not in capsys.readouterr().err


# ---- mistakes: one line on stderr, status 2, no traceback ------------------------------------------


@pytest.fixture
def text_model(tmp_path):
    path = tmp_path / "text.joblib"
    path.write_text("x: this is not a model\n")  # an ASCII "x" is also zlib's first byte
    return path


@pytest.fixture
def truncated_model(model, tmp_path):
    path = tmp_path / "truncated.joblib"
    data = model.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_missing_data_folder(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.joblib")]) == 2
    assert_one_line_error(capsys.readouterr().err, "nowhere", "does not exist")


def test_csv_without_a_label_column(corpus, tmp_path, capsys):
    csv = write_csv(tmp_path / "d.csv", "path,emotion", [f"{corpus / '03a01Wa.wav'},anger"])
    assert main(["train", str(csv), "--out", str(tmp_path / "m.joblib")]) == 2
    assert_one_line_error(capsys.readouterr().err, "'label'", "path,label")


def test_csv_naming_a_missing_file(corpus, tmp_path, capsys):
    csv = write_csv(tmp_path / "d.csv", "path,label", [f"{corpus / '03a01Wa.wav'},anger", "gone.wav,sadness"])
    assert main(["train", str(csv), "--out", str(tmp_path / "m.joblib")]) == 2
    assert_one_line_error(capsys.readouterr().err, "line 3", "gone.wav")


def test_folder_with_non_emodb_names(tmp_path, capsys):
    sf.write(tmp_path / "hello.wav", make_tone(440, 0.8), 16000)
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "m.joblib")]) == 2
    assert_one_line_error(capsys.readouterr().err, "hello.wav", "CSV")


def test_no_writable_temporary_folder_stops_training_before_any_work(corpus, tmp_path, monkeypatch, capsys):
    """torch's optimizer asks for a temporary folder: train failed after decoding and augmenting,
    adding "--skip-errors trains on the other files" to an error of no data file."""
    import tempfile

    def no_folder():
        raise FileNotFoundError(errno.ENOENT, "No usable temporary directory found in ['/tmp']")

    decoded = []
    monkeypatch.setattr(EmotionPipeline, "fit", lambda self, *a, **k: decoded.append(1))
    monkeypatch.setattr(tempfile, "gettempdir", no_folder)
    for command in (["train", str(corpus), "--out", str(tmp_path / "m.joblib")], ["reproduce", "--quick", "--data", str(corpus)]):
        assert main([*command, *FAST]) == 2
        assert_one_line_error(capsys.readouterr().err, "No usable temporary directory", "set TMPDIR")
    assert decoded == []
    # such an error raised later (no file named) gets no --skip-errors hint
    monkeypatch.undo()
    monkeypatch.setattr(EmotionPipeline, "fit", lambda self, *a, **k: no_folder())
    assert main(["train", str(corpus), "--out", str(tmp_path / "m.joblib"), *FAST]) == 2
    assert "--skip-errors" not in capsys.readouterr().err


@pytest.mark.parametrize("which", ["text_model", "truncated_model"])
def test_a_file_that_is_not_a_model(which, request, corpus, capsys):
    path = request.getfixturevalue(which)
    assert main(["predict", str(path), str(corpus / "03a01Wa.wav")]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, "written by 'sersk train'")
    if which == "text_model":  # the unpickler's error on text is noise ("No module named 'mport joblib'")
        assert "not a joblib or pickle file" in err and "Error" not in err
    else:
        assert "cannot be unpickled" in err and "truncated or corrupt" in err


def test_an_empty_model_file(tmp_path, corpus, capsys):
    (tmp_path / "empty.joblib").touch()
    assert main(["predict", str(tmp_path / "empty.joblib"), str(corpus / "03a01Wa.wav")]) == 2
    assert_one_line_error(capsys.readouterr().err, "empty.joblib' is empty (0 bytes)")


def test_a_joblib_file_holding_something_else(tmp_path, corpus, capsys):
    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    assert main(["predict", str(tmp_path / "dict.joblib"), str(corpus / "03a01Wa.wav")]) == 2
    assert_one_line_error(capsys.readouterr().err, "holds a dict, not a sersk model")


def test_a_fitted_scikit_learn_model_is_refused_by_what_it_is(tmp_path, corpus, capsys):
    """A fitted LogisticRegression has predict_proba and classes_, but it is not a sersk model."""
    from sklearn.linear_model import LogisticRegression

    joblib.dump(LogisticRegression().fit([[0.0], [1.0]], ["a", "b"]), tmp_path / "lr.joblib")
    assert main(["predict", str(tmp_path / "lr.joblib"), str(corpus / "03a01Wa.wav")]) == 2
    assert_one_line_error(capsys.readouterr().err, "holds a LogisticRegression", "not a sersk model")


def test_data_arguments_are_checked_before_the_model_is_loaded(tmp_path, corpus, monkeypatch, capsys):
    import sersk.persistence

    def no_loading(path):
        raise AssertionError("the model was loaded before the data arguments were checked")

    monkeypatch.setattr(sersk.persistence, "load_model", no_loading)
    model = str(tmp_path / "model.joblib")
    assert main(["evaluate", model, str(tmp_path / "no_such_folder")]) == 2
    assert_one_line_error(capsys.readouterr().err, "no_such_folder", "does not exist")
    assert main(["predict", model, str(tmp_path / "gone.wav")]) == 2
    assert_one_line_error(capsys.readouterr().err, "gone.wav", "does not exist")
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "moved.wav").symlink_to(tmp_path / "elsewhere.wav")  # a folder's broken link is named
    assert main(["predict", model, str(tmp_path / "clips")]) == 2
    assert_one_line_error(capsys.readouterr().err, "moved.wav' does not exist (a broken link to", "elsewhere.wav')")
    (tmp_path / "empty").mkdir()
    assert main(["predict", model, str(tmp_path / "empty")]) == 2
    assert_one_line_error(capsys.readouterr().err, "empty", "holds no audio files")
    (tmp_path / "a_file").write_text("")  # an output folder that cannot be written: before, not after the scores
    assert main(["evaluate", model, str(corpus), "--out-dir", str(tmp_path / "a_file" / "eval")]) == 2
    assert_one_line_error(capsys.readouterr().err, "--out-dir: cannot write to", "a_file/eval' (Not a directory)")
    assert main(["train", str(corpus), "--out", str(tmp_path / "a_file" / "m.joblib"), *FAST]) == 2  # as --out-dir's
    assert_one_line_error(capsys.readouterr().err, "sersk: error: --out: cannot write to", "a_file' (Not a directory)")


def test_reproduce_checks_its_output_folder_before_training(tmp_path, corpus, monkeypatch, capsys):
    from sersk import AudioLoader

    def no_decoding(self, X):
        raise AssertionError("audio was decoded before --out-dir was checked")

    monkeypatch.setattr(AudioLoader, "transform", no_decoding)
    (tmp_path / "a_file").write_text("")
    argv = ["reproduce", "--quick", "--data-home", str(corpus.parent), "--out-dir", str(tmp_path / "a_file" / "r")]
    assert main(argv) == 2
    assert_one_line_error(capsys.readouterr().err, "--out-dir: cannot write to", "(Not a directory)")


def test_a_single_label_is_refused_before_decoding(corpus, tmp_path, monkeypatch, capsys):
    from sersk import AudioLoader

    def no_decoding(self, X):
        raise AssertionError("audio was decoded before the labels were checked")

    monkeypatch.setattr(AudioLoader, "transform", no_decoding)
    csv = write_csv(tmp_path / "d.csv", "path,label", [f"{corpus / '03a01Wa.wav'},anger", f"{corpus / '08a01Wa.wav'},anger"])
    assert main(["train", str(csv), "--out", str(tmp_path / "m.joblib")]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, "single label (anger)", "at least two")
    assert "np.str_" not in err


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--lr", "-1"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**32)], "--seed"),
        (["--n-jobs", "0"], "--n-jobs"),
        (["--epochs", "0"], "--epochs"),
        (["--validation-fraction", "1.5"], "--validation-fraction"),
        (["--device", "tpu"], "--device"),
        (["--preset", "fast"], "--preset"),
    ],
)
def test_bad_option_values_are_rejected_by_the_parser(argv, option, tmp_path, capsys):
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "m.joblib"), *argv]) == 2
    assert_one_line_error(capsys.readouterr().err, f"argument {option}")


def test_predict_a_folder_predicts_every_audio_file_in_it(model, corpus, tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("03a01Wa.wav", "08a02Ta.wav"):
        shutil.copy(corpus / name, folder / name)
    sf.write(folder / "extra.flac", make_tone(440, 0.8), 16000)
    (folder / "notes.txt").write_text("not audio")
    assert main(["predict", str(model), str(folder), str(corpus / "09a01Wa.wav"), "--json"]) == 0
    paths = [r["path"] for r in json.loads(capsys.readouterr().out)["predictions"]]
    assert paths == [str(folder / n) for n in ("03a01Wa.wav", "08a02Ta.wav", "extra.flac")] + [str(corpus / "09a01Wa.wav")]


def test_unknown_param_and_usage_errors(corpus, tmp_path, capsys):
    assert main(["train", str(corpus), "--out", str(tmp_path / "m.joblib"), "--param", "net__nope=1"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--param net__nope", "not a parameter")
    assert main(["train", str(corpus), "--out", str(tmp_path / "m.joblib"), "--param", "lr=0.1"]) == 2
    assert_one_line_error(capsys.readouterr().err, "not a parameter of the pipeline. Did you mean net__lr?", "net__)")
    assert main(["train", str(corpus), "--out", str(tmp_path / "m.joblib"), "--param", "net__lrr=0.1"]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, "Did you mean net__lr?", "Valid: band_offset, batch_by_length")
    assert "_params_to_validate" not in err
    assert main(["train", str(corpus), "--out", str(tmp_path / "m.joblib"), "--param", "scale__scope=speaker"]) == 2
    assert_one_line_error(capsys.readouterr().err, "'scale' is not a step", "(its steps: load, augment, logmel, net); "
                          "--preset tuned has it")
    argv = ["train", str(corpus), "--out", str(tmp_path / "m.joblib"), "--n-augmentations", "0"]
    assert main([*argv, "--param", "augment__noise_p=0.5"]) == 2  # the preset has the step, but not with 0 copies
    assert_one_line_error(capsys.readouterr().err, "'augment' is not a step", "--n-augmentations N (1 or more) adds it")
    assert main(["train", str(corpus), "--out", str(tmp_path / "m.joblib"), "--param", "net__lr_schedule='linear'"]) == 2
    assert_one_line_error(capsys.readouterr().err, "lr_schedule='linear'")  # refused before any decoding
    assert main(["train", str(corpus), "--out", str(tmp_path / "m.joblib"), "--param", "net__max_epochs=abc"]) == 2
    assert_one_line_error(capsys.readouterr().err, "max_epochs='abc'; expected a positive integer")
    speaker_scope = ["--preset", "tuned", "--param", "scale__scope=speaker", *FAST]  # FAST has stored copies
    assert main(["reproduce", "--quick", "--data-home", str(corpus.parent), "--out-dir", str(tmp_path), *speaker_scope]) == 2
    assert_one_line_error(capsys.readouterr().err, "comes after a sampler")  # before decoding a clip
    assert main(["train", str(corpus)]) == 2  # --out missing: argparse
    assert_one_line_error(capsys.readouterr().err, "--out")
    assert main(["predict", "--chunk-size", "0", "m.joblib", "a.wav"]) == 2
    assert_one_line_error(capsys.readouterr().err, "positive integer")
    assert main(["reproduce", "--quik"]) == 2  # under the subcommand's usage, with the closest option
    err = capsys.readouterr().err
    assert err.startswith("usage: sersk reproduce ")
    assert_one_line_error(err, "unrecognized arguments: --quik; did you mean --quick? (see 'sersk reproduce --help')")
    assert main(["reproduce", "extra", "--quik"]) == 2  # the closest option to the unknown option, not to "extra"
    assert_one_line_error(capsys.readouterr().err, "unrecognized arguments: extra --quik; did you mean --quick?")
    assert main(["reproduce", "--", "--quick"]) == 2  # after "--" it is no option: no suggestion
    assert capsys.readouterr().err.strip().endswith("unrecognized arguments: --quick (see 'sersk reproduce --help')")
    assert main(["train", str(corpus), "--out", "--", "x.joblib"]) == 2  # "--" ends the options: --out has no value
    assert_one_line_error(capsys.readouterr().err, "argument --out: expected one argument")
    assert main(["reproduce", "--speakers", "03", "--", "08"]) == 2  # a list option's values end at "--"
    assert_one_line_error(capsys.readouterr().err, "unrecognized arguments: 08")
    assert main(["predict", "m.joblib", "--chunk-size", "--", "a.wav"]) == 2  # not the stand-in of a.wav as its value
    assert_one_line_error(capsys.readouterr().err, "argument --chunk-size: expected one argument")
    assert not (tmp_path / "m.joblib").exists()


# ---- atomic model writes -------------------------------------------------------------------------


@pytest.mark.parametrize("exc, status", [(ValueError("boom"), 2), (KeyboardInterrupt(), 130)])
def test_a_failed_fit_leaves_no_file_and_keeps_an_existing_model(exc, status, corpus, tmp_path, monkeypatch, capsys):
    def failing_fit(self, *args, **kwargs):
        raise exc

    monkeypatch.setattr(EmotionPipeline, "fit", failing_fit)
    out = tmp_path / "new.joblib"
    assert main(["train", str(corpus), "--out", str(out), *FAST]) == status
    assert not out.exists()
    existing = tmp_path / "existing.joblib"
    existing.write_bytes(b"previous model")
    assert main(["train", str(corpus), "--out", str(existing), *FAST]) == status
    assert existing.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.joblib"]  # no temporary file left
    assert main(["train", str(corpus), "--out", str(tmp_path / "runs" / "a" / "m.joblib"), *FAST]) == status
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.joblib"]  # nor the folders made for it
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("boom" in err or "interrupted" in err)


def test_a_full_disk_found_by_the_output_checks_exits_71(model, corpus, tmp_path, monkeypatch, capsys):
    """The up-front checks of --out and --out-dir rebuilt the error without its errno: exit 2."""
    from sersk import cli

    def full(folder):
        raise OSError(errno.ENOSPC, f"cannot write to {str(folder)!r} (No space left on device)")

    monkeypatch.setattr(cli, "check_writable_folder", full)
    assert main(["train", str(corpus), "--out", str(tmp_path / "m.joblib"), *FAST]) == 71
    assert_one_line_error(capsys.readouterr().err, "out of disk space (--out: cannot write to")
    assert main(["evaluate", str(model), str(corpus), "--out-dir", str(tmp_path / "e")]) == 71
    assert_one_line_error(capsys.readouterr().err, "out of disk space (--out-dir: cannot write to")


def test_a_network_too_large_to_build_is_a_mistake_in_param_not_the_machines_limit(corpus, tmp_path, monkeypatch,
                                                                                     capsys):
    def too_large(self):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 38400000000 bytes")

    monkeypatch.setattr(CNNLSTMClassifier, "initialize", too_large)
    argv = ["train", str(corpus), "--out", str(tmp_path / "m.joblib"), *FAST, "--param", "net__module__hidden_size=300000000"]
    assert main(argv) == 2  # was 71, "out of memory ...: lower --batch-size", which cannot help
    assert_one_line_error(capsys.readouterr().err, "--param: the network cannot be built with these parameters")


def test_train_opens_the_model_file_only_once_trained(corpus, tmp_path, monkeypatch, capsys):
    """A run killed while it trains (the system's out-of-memory killer, a scheduler's kill -9) left a
    temporary file beside --out, one more each run; a full disk at the save named no file."""
    seen = []

    def fit_and_look(self, *args, **kwargs):
        seen.append(sorted(os.listdir(tmp_path / "models")))
        raise ValueError("stop here")

    (tmp_path / "models").mkdir()
    monkeypatch.setattr(EmotionPipeline, "fit", fit_and_look)
    assert main(["train", str(corpus), "--out", str(tmp_path / "models" / "m.joblib"), *FAST]) == 2
    assert seen == [[]]  # nothing in the folder while training
    capsys.readouterr()
    monkeypatch.undo()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(joblib, "dump", full_disk)
    assert main(["train", str(corpus), "--out", str(tmp_path / "models" / "m.joblib"), *FAST]) == 71
    assert_one_line_error(capsys.readouterr().err, "sersk: error: out of disk space (cannot write '",
                          "m.joblib' (No space left on device))")
    assert os.listdir(tmp_path / "models") == []


def _killed_worker():
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    return TerminatedWorkerError("A worker process managed by the executor was unexpectedly terminated. ... The exit "
                                 "codes of the workers are {SIGKILL(-9)}")


@pytest.mark.parametrize("error, what", [
    (RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't allocate memory: you tried "
                  "to allocate 6291456 bytes. Error code 12 (Cannot allocate memory)"), "out of memory (["),
    (MemoryError(), "out of memory (MemoryError)"),  # was "out of memory ()"
    (_killed_worker(), "out of memory (a worker process was killed"),  # an augmentation worker, by the system
    (OSError(errno.ENOSPC, "No space left on device"), "out of disk space (No space left on device)"),
    (OSError(errno.ENOSPC, "No space left on device", "/tmp/cache/x.py"), "out of disk space (No space left on "
                                                                          "device: '/tmp/cache/x.py')"),
])
def test_running_out_of_memory_or_disk_exits_71_naming_what_to_lower(error, what, model, corpus, tmp_path,
                                                                      monkeypatch, capsys):
    """torch's allocator failing gave an 88-line traceback and exit status 1 (which says files were
    skipped); a full disk exited 2, as a mistake in the command does."""
    from sersk import batch

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(EmotionPipeline, "fit", fail)
    assert main(["train", str(corpus), "--out", str(tmp_path / "m.joblib"), *FAST]) == 71
    err = capsys.readouterr().err
    assert_one_line_error(err, f"sersk: error: {what}")
    if what.startswith("out of memory (["):
        assert "lower --batch-size (or --param net__max_batch_frames=N)" in err
        monkeypatch.setattr(batch, "predict_files", fail)
        assert main(["predict", str(model), str(corpus)]) == 71
        assert_one_line_error(capsys.readouterr().err, "sersk: error: out of memory (", "lower --chunk-size")


def test_commands_run_torch_within_the_cpus_the_process_may_use(corpus, tmp_path, monkeypatch, capsys, request):
    """torch does not read a container's CPU quota: on a 64-core host allowing 2 CPUs it ran 64
    threads. joblib's count reads it; OMP_NUM_THREADS, when set, decides."""
    import joblib as joblib_module

    seen, original = [], torch.get_num_threads()

    def fit_and_count(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        raise ValueError("stop here")

    torch.set_num_threads(2)  # a machine's thread count above the quota, wherever the test runs
    request.addfinalizer(lambda: torch.set_num_threads(original))
    before = torch.get_num_threads()
    monkeypatch.setattr(EmotionPipeline, "fit", fit_and_count)
    monkeypatch.setattr(joblib_module, "cpu_count", lambda *args, **kwargs: 1)  # a quota of one CPU
    for omp in (None, str(before)):
        if omp is None:
            monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
            monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("OMP_NUM_THREADS", omp)
        assert main(["train", str(corpus), "--out", str(tmp_path / "m.joblib"), *FAST]) == 2
        assert torch.get_num_threads() == before  # set back
    assert seen == [1, before]


def test_evaluate_on_a_full_disk_keeps_the_last_runs_outputs_together(model, corpus, tmp_path, monkeypatch, capsys):
    """The confusion matrix was written before the scores: a disk that filled in between left this
    run's figure beside the last run's metrics.json."""
    from sersk import cli

    out = tmp_path / "eval"
    some = write_csv(tmp_path / "some.csv", "path,label", [f"{p},{'anger' if 'W' in p.name else 'sadness'}"
                                                          for p in sorted(corpus.glob("*.wav"))[:3]])
    assert main(["evaluate", str(model), str(some), "--out-dir", str(out)]) == 0  # the last run: another figure
    before = {name: (out / name).read_bytes() for name in ("confusion_matrix.png", "metrics.json")}

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli, "_write_json", full_disk)
    assert main(["evaluate", str(model), str(corpus), "--out-dir", str(out)]) == 71
    assert {name: (out / name).read_bytes() for name in sorted(os.listdir(out))} == before


def test_help_and_version_import_neither_scikit_learn_nor_torch():
    """``sersk --version`` took a second, importing scikit-learn for a plural."""
    code = "import sys, sersk.cli; print(sorted(m for m in ('sklearn', 'torch', 'matplotlib') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_python_dash_m_sersk_runs_the_command_line():
    # "No module named sersk.__main__" before (a packaging review)
    done = subprocess.run([sys.executable, "-m", "sersk", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"sersk {__version__}", done.stdout + done.stderr


def test_the_predict_table_aligns_wide_characters_by_the_columns_they_take():
    import unicodedata

    from sersk.cli import _format_table

    decomposed = unicodedata.normalize("NFD", "M\u00e4dchen.wav")  # as macOS writes names: "a" + a combining mark
    rows = [["日本.wav", "anger", "0.900"], ["ab.wav", "joy", "0.100"], [decomposed, "fear", "0.500"]]
    lines = _format_table(["path", "label", "anger"], rows).splitlines()
    columns = [
        sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
            for c in line[: line.index(label)])
        for line, label in zip(lines, ["label", "anger", "joy", "fear"])
    ]
    assert len(set(columns)) == 1  # "日本" takes four columns, "Mädchen" seven: they were 2 and 1 off


def test_a_full_disk_is_named_once_by_the_innermost_file(tmp_path):
    """Nested atomic writes (evaluate's figure around its scores) named both files, one in the other."""
    from sersk.utils.files import atomic_output

    with pytest.raises(OSError) as info:
        with atomic_output(tmp_path / "a.png"), atomic_output(tmp_path / "b.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.strerror == f"cannot write {str(tmp_path / 'b.json')!r} (No space left on device)"
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name == "nt", reason="Windows limits the whole path (260 characters) before the name")
def test_atomic_output_writes_a_name_near_the_systems_limit(tmp_path):
    """The temporary file's name is 15 characters longer than the target's: a valid name of 251
    characters failed with "File name too long"."""
    from sersk.utils.files import atomic_output

    target = tmp_path / ("m" * 244 + ".joblib")
    with atomic_output(target) as fh:
        fh.write(b"model")
    assert target.read_bytes() == b"model" and os.listdir(tmp_path) == [target.name]


def test_atomic_output_removes_only_the_folders_it_made(tmp_path, monkeypatch):
    from sersk.utils.files import atomic_output

    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing").mkdir()
    for target in ("ghost/../existing/m.joblib", "a/b/m.joblib", "existing/new/m.joblib"):
        with pytest.raises(ValueError, match="boom"), atomic_output(target):
            assert os.path.isdir(os.path.dirname(os.path.abspath(target)))  # made for the file
            raise ValueError("boom")
        assert [p.name for p in tmp_path.rglob("*")] == ["existing"], target  # 'existing' was there before


def test_check_writable_folder_leaves_nothing_behind(tmp_path):
    from sersk.utils.files import check_writable_folder

    (tmp_path / "existing").mkdir()
    for folder in (tmp_path / "a" / "b", tmp_path / "existing"):
        check_writable_folder(folder)
    assert [p.name for p in tmp_path.rglob("*")] == ["existing"]  # no folder made, no temporary file
    (tmp_path / "a_file").write_text("")
    with pytest.raises(NotADirectoryError, match=r"cannot write to .*a_file/b' \(Not a directory\)"):
        check_writable_folder(tmp_path / "a_file" / "b")


@pytest.mark.parametrize("refusal", [IsADirectoryError, PermissionError])
def test_writes_work_where_an_existing_folder_refuses_mkdir_with_another_error(tmp_path, monkeypatch, refusal):
    """macOS refuses mkdir("/") with EISDIR and Windows mkdir("C:\\") with EACCES, not EEXIST: every
    atomic write and every --out-dir check failed there."""
    from pathlib import Path

    from sersk.utils.files import atomic_output, check_writable_folder

    make = Path.mkdir

    def mkdir_as_elsewhere(self, *args, **kwargs):
        if self.is_dir():
            raise refusal(21, "Is a directory")
        return make(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir_as_elsewhere)
    with atomic_output(tmp_path / "new" / "m.joblib") as fh:
        fh.write(b"model")
    assert (tmp_path / "new" / "m.joblib").read_bytes() == b"model"
    check_writable_folder(tmp_path / "other")
    assert not (tmp_path / "other").exists()
    (tmp_path / "a_file").write_text("")
    with pytest.raises(NotADirectoryError):  # a real refusal still fails
        check_writable_folder(tmp_path / "a_file" / "b")


def test_atomic_output_gives_new_files_the_umask_mode_without_touching_the_umask(tmp_path, monkeypatch):
    from sersk.utils.files import atomic_output

    previous = os.umask(0o027)
    try:
        # reading the umask means setting it, for a moment, for every thread: a host's files then got mode 0o666
        monkeypatch.setattr(os, "umask", lambda mask: pytest.fail("os.umask called"))
        with atomic_output(tmp_path / "new.json") as fh:
            fh.write(b"{}")
        assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o640
        os.chmod(tmp_path / "new.json", 0o600)
        with atomic_output(tmp_path / "new.json") as fh:  # a file already there keeps its mode
            fh.write(b"[]")
        assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o600
        assert [p.name for p in tmp_path.iterdir()] == ["new.json"]
    finally:
        monkeypatch.undo()
        os.umask(previous)


def test_ctrl_c_swallowed_by_the_training_loop_still_aborts(corpus, tmp_path, monkeypatch, request):
    """skorch catches KeyboardInterrupt and returns a partly trained net: the CLI must not save it."""

    def fit_like_skorch(self, *args, **kwargs):
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass
        return self

    # A shell starts background jobs with SIGINT ignored; Ctrl-C reaches a foreground command, so
    # give the test the disposition it has there, whatever this test run inherited.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, inherited))
    monkeypatch.setattr(EmotionPipeline, "fit", fit_like_skorch)
    out = tmp_path / "m.joblib"
    assert main(["train", str(corpus), "--out", str(out), *FAST]) == 130
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ---- reproduce, the console script --------------------------------------------------------------


def test_a_reproduce_cut_short_leaves_the_last_runs_outputs_as_they_were(corpus, tmp_path, monkeypatch, capsys):
    """The figures were written as the run went, results.json at its end: a run that failed (or was
    stopped, or met a full disk) left its figures beside the last run's results."""
    from sersk import evaluation

    out_dir = tmp_path / "repro"
    out_dir.mkdir()
    last = {"results.json": b'{"last": "run"}', "class_distribution.png": b"last run's figure"}
    for name, content in last.items():
        (out_dir / name).write_bytes(content)

    def draws_then_fails(*args, figures_dir, **kwargs):
        (Path(figures_dir) / "class_distribution.png").write_bytes(b"this run's figure")
        raise ValueError("the run failed here")

    monkeypatch.setattr(evaluation, "run_reference_protocol", draws_then_fails)
    argv = ["reproduce", "--quick", "--data-home", str(corpus.parent), "--out-dir", str(out_dir), *FAST]
    assert main(argv) == 2
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == last  # and no staging folder


@pytest.mark.parametrize("speaker_independent", [False, True])
def test_reproduce_quick_on_a_tiny_corpus(speaker_independent, corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(evaluation, "_BOOTSTRAP_MIN_SPEAKERS", 3)  # the quick run's 3 folds: an interval to print
    out_dir = tmp_path / "repro"
    argv = ["reproduce", "--quick", "--data-home", str(corpus.parent), "--out-dir", str(out_dir), *FAST]
    assert main(argv + (["--speaker-independent"] if speaker_independent else [])) == 0
    out, err = capsys.readouterr()
    assert "sersk: warning: " in err and "holds 5 of the 535 clips of the Emo-DB release and 11 clips not in it" in err
    results = json.loads((out_dir / "results.json").read_text())
    assert results["quick"] and results["n_augmentations"] == 1 and results["epochs"] == 1
    counts = np.array(results["confusion_matrix"]["counts"])
    assert results["accuracy"] == pytest.approx(np.trace(counts) / counts.sum())
    assert 0 <= results["uar"] <= 1 and results["peak_rss_mib"]["self"] > 0
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # no staging folder left
    pngs = {p.name for p in out_dir.glob("*.png")}
    assert {"class_distribution.png", "waveform.png", "log_mels.png", "confusion_matrix.png"} <= pngs
    assert all((out_dir / name).read_bytes()[:8] == PNG_MAGIC for name in pngs)
    assert_documented("reproduce", results, results["confusion_matrix"], *results.get("per_speaker", [])[:1])
    assert_documented("reproduce", results["predictions"][0] if "predictions" in results else results["per_speaker"][0]["predictions"][0])
    if speaker_independent:
        assert [f["speaker"] for f in results["per_speaker"]] == ["03", "08", "09"]  # 3 folds in --quick
        assert results["n_files"] == 12 and "3 of 4" in results["folds_run"]
        assert {f"training_history_speaker{s}.png" for s in ("03", "08", "09")} <= pngs
        assert "ADRNN 85.4 % accuracy" in out and "ACRNN 82.8 % UAR" in out and "80.0 % accuracy / 78.6 % UAR" in out
        assert results["published"]["ADRNN"] == ["accuracy", 0.854] and "80.0 % accuracy" in results["project_bar"]
        assert "reference_accuracy" not in results
        low, high = results["speaker_bootstrap_ci95"]["accuracy"]
        folds = [f["accuracy"] for f in results["per_speaker"]]
        assert min(folds) <= low <= high <= max(folds)
        assert f"speakers drawn again (bootstrap): accuracy 95 % interval {100 * low:.1f}-{100 * high:.1f} %" in out
    else:
        low, high = results["accuracy_ci95"]
        assert low <= results["accuracy"] <= high
        assert f"(95 % interval {100 * low:.1f}-{100 * high:.1f} %, clips taken as independent)" in out
        assert (results["n_train"], results["n_validation"], results["n_test"]) == (10, 2, 4)
        assert "training_history.png" in pngs and "reference: 63.29 %" in out
        assert results["reference_accuracy"] == 0.6329 and "published" not in results
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.parametrize("speaker_independent", [False, True])
def test_reproduce_on_a_corpus_of_ones_own(speaker_independent, corpus, tmp_path, capsys):
    """A CSV corpus (speakers as a column): the protocol runs on it, without Emo-DB's published figures."""
    table = tmp_path / "mine.csv"
    rows = [f"{path},{EMOTIONS[path.name[5]][0]},spk{path.name[:2]}" for path in sorted(corpus.glob("*.wav"))]
    table.write_text("path,label,speaker\n" + "\n".join(rows) + "\n")
    out_dir = tmp_path / "repro"
    argv = ["reproduce", "--quick", "--data", str(table), "--out-dir", str(out_dir), *FAST]
    assert main(argv + (["--speaker-independent"] if speaker_independent else [])) == 0
    out = capsys.readouterr().out
    results = json.loads((out_dir / "results.json").read_text())
    assert out.startswith(f"'{table}': 16 clips, 4 speakers; preset reference") and f"corpus: {table}" in out
    assert results["corpus"] == str(table) and not {"published", "project_bar", "reference_accuracy"} & set(results)
    assert "published speaker-independent" not in out and "reference: 63.29" not in out
    if speaker_independent:
        assert [f["speaker"] for f in results["per_speaker"]] == ["spk03", "spk08", "spk09"]
    unlabelled_speakers = tmp_path / "no_speakers.csv"
    unlabelled_speakers.write_text("path,label\n" + "\n".join(row.rsplit(",", 1)[0] for row in rows) + "\n")
    if speaker_independent:
        assert main(argv[:3] + [str(unlabelled_speakers), *argv[4:], "--speaker-independent"]) == 2
        assert_one_line_error(capsys.readouterr().err, "names no speakers: leave-one-speaker-out needs the speaker")
    assert main(argv + ["--data-home", str(corpus.parent)]) == 2
    assert_one_line_error(capsys.readouterr().err, "--data-home and --download are Emo-DB's")


def test_reproduce_runs_the_folds_of_the_named_speakers_and_says_it_is_partial(corpus, tmp_path, capsys):
    out_dir = tmp_path / "repro"
    argv = ["reproduce", "--quick", "--data-home", str(corpus.parent), "--out-dir", str(out_dir), *FAST]
    assert main(argv + ["--speakers", "09"]) == 2
    assert "--speakers names the held-out speakers of --speaker-independent" in capsys.readouterr().err
    assert main(argv + ["--speaker-independent", "--speakers", "09", "03"]) == 0
    results = json.loads((out_dir / "results.json").read_text())
    assert [f["speaker"] for f in results["per_speaker"]] == ["09", "03"] and results["folds_run"] == "2 of 4"
    assert results["command"] == shlex.join(["sersk", *argv, "--speaker-independent", "--speakers", "09", "03"])
    out = capsys.readouterr().out
    assert "PARTIAL: 2 of 4 folds run (held-out speakers 09, 03); pooled over those only" in out
    assert "1 augmented copy in place of each training clip" in out
    assert main(argv + ["--speaker-independent", "--speakers", "09", "09"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--speakers names 09 more than once")
    assert main(argv + ["--speaker-independent", "--speakers", "99"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--speakers 99: not among Emo-DB's speakers (03 08 09 10)")


def test_reproduce_resumes_a_speaker_independent_run_cut_short(corpus, tmp_path, capsys, pipeline_fits):
    out_dir = tmp_path / "repro"
    argv = ["reproduce", "--quick", "--speaker-independent", "--data-home", str(corpus.parent), "--out-dir",
            str(out_dir), *FAST]
    pipeline_fits.interrupt_at = 2  # Ctrl-C in the second fold
    assert main(argv) == 130
    assert [p.name for p in (out_dir / "folds").iterdir()] == ["fold_03.json"] and not (out_dir / "results.json").exists()
    pipeline_fits.count, pipeline_fits.interrupt_at = 0, None
    assert main(argv) == 2  # the finished fold is neither lost nor silently pooled with a new run's
    assert_one_line_error(capsys.readouterr().err, "holds 1 finished fold of an earlier run: add --resume")
    assert main(argv + ["--resume"]) == 0 and pipeline_fits.count == 2
    assert f"resumed: the folds of 03 were read from {out_dir / 'folds'}/" in capsys.readouterr().out
    results = json.loads((out_dir / "results.json").read_text())
    assert results["folds_loaded"] == ["03"] and [f["speaker"] for f in results["per_speaker"]] == ["03", "08", "09"]
    # the fold finished before Ctrl-C kept its figure too (a read fold draws none)
    assert {f"training_history_speaker{s}.png" for s in ("03", "08", "09")} <= {p.name for p in out_dir.iterdir()}
    assert main(argv + ["--resume", "--epochs", "2"]) == 2 and pipeline_fits.count == 2
    assert_one_line_error(capsys.readouterr().err, "fold_03.json' holds the fold of speaker 03 of another run")
    assert main(argv[:2] + argv[3:] + ["--resume"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--resume continues a --speaker-independent run cut short")


def test_the_console_script_runs():
    script = Path(sys.executable).with_name("sersk")
    script = str(script) if script.exists() else shutil.which("sersk")
    assert script, "the sersk console script is not installed (pip install -e .)"
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for command in ("train", "predict", "evaluate", "reproduce"):
        assert command in done.stdout


@pytest.mark.parametrize("by_speaker", [False, True])
def test_reproduce_speaker_independent_with_the_tuned_preset(by_speaker, corpus, tmp_path, capsys):
    out_dir = tmp_path / "repro"
    argv = ["reproduce", "--quick", "--speaker-independent", "--preset", "tuned", "--data-home", str(corpus.parent),
            "--out-dir", str(out_dir), *FAST, "--param", "net__crop_frames=16"]
    if by_speaker:  # each clip's speaker is known only without stored copies
        at = argv.index("--n-augmentations")
        argv = argv[:at] + argv[at + 2 :] + ["--param", "scale__scope=speaker"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    results = json.loads((out_dir / "results.json").read_text())
    assert results["preset"] == "tuned" and "preset tuned" in out
    assert "no validation speaker" in results["protocol"]  # the tuned preset trains on every other speaker
    assert all(f["n_train_clips"] == 12 for f in results["per_speaker"])
    assert results["transductive"] is by_speaker and ("TRANSDUCTIVE" in out) is by_speaker


def test_preset_names_match_the_library():
    from sersk.cli import PRESET_NAMES
    from sersk.pipeline import PRESETS, VALIDATION_SPEAKER

    assert PRESET_NAMES == tuple(PRESETS) == tuple(VALIDATION_SPEAKER)


def test_sigterm_ends_the_command_and_leaves_no_partial_file(corpus, tmp_path):
    # kill or timeout sends SIGTERM, whose default action ended the process with the model half written
    code = f"""
import signal, sys
from sersk.cli import main
from sersk.pipeline import EmotionPipeline

def fit_until_terminated(self, *args, **kwargs):
    signal.raise_signal(signal.SIGTERM)
    raise AssertionError("not terminated")

EmotionPipeline.fit = fit_until_terminated
sys.exit(main(["train", {str(corpus)!r}, "--out", {str(tmp_path / "m.joblib")!r}, *{FAST!r}]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 143, done.stderr[-2000:]
    assert "sersk: terminated" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # neither the model nor its temporary .part file


def test_train_passes_the_speakers_to_a_speaker_scope_step(corpus, tmp_path, capsys):
    tuned = ["--preset", "tuned", *FAST[2:], "--param", "scale__scope=speaker", "--param", "net__crop_frames=16"]
    assert main(["train", str(corpus), "--out", str(tmp_path / "m.joblib"), *tuned]) == 0  # speakers from the names
    scaler = joblib.load(tmp_path / "m.joblib").named_steps["scale"]
    assert scaler.scope == "speaker"
    rows = [f"{p},{'anger' if 'W' in p.name else 'sadness'}" for p in sorted(corpus.glob("*.wav"))]
    csv = write_csv(tmp_path / "no_speakers.csv", "path,label", rows)
    assert main(["train", str(csv), "--out", str(tmp_path / "n.joblib"), *tuned]) == 2
    assert_one_line_error(capsys.readouterr().err, "scope='speaker' needs each clip's speaker")
    # evaluate predicts each speaker's files together (it took each chunk of files as one speaker)
    model, files = load_model(tmp_path / "m.joblib"), sorted(corpus.glob("*.wav"))
    speakers = np.array([f.name[:2] for f in files])
    expected = np.empty(len(files), dtype=object)
    for speaker in np.unique(speakers):
        expected[speakers == speaker] = model.predict([str(f) for f in files if f.name[:2] == speaker])
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m.joblib"), str(corpus), "--out-dir", str(tmp_path / "e"),
                 "--chunk-size", "3"]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert [Path(p["path"]).name for p in metrics["predictions"]] == [f.name for f in files]
    assert [p["predicted"] for p in metrics["predictions"]] == list(expected)
    assert "note" not in capsys.readouterr().err
    # without speakers, all the files are one speaker's, and the CLI says so
    assert main(["evaluate", str(tmp_path / "m.joblib"), str(csv), "--out-dir", str(tmp_path / "f")]) == 0
    assert "names no speakers: its files are standardised together, as one speaker's" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "m.joblib"), str(files[0])]) == 0
    assert "the files given are standardised together, as one speaker's" in capsys.readouterr().err
    # --speaker-per-folder: each folder's files are one speaker's, a folder given or a file's own
    for speaker in np.unique(speakers):
        (tmp_path / speaker).mkdir()
        for f in files:
            if f.name[:2] == speaker:
                shutil.copy(f, tmp_path / speaker / f.name)
    first, second = np.unique(speakers)[:2]
    named = [str(tmp_path / first), *sorted(str(p) for p in (tmp_path / second).iterdir())]
    assert main(["predict", str(tmp_path / "m.joblib"), *named, "--speaker-per-folder", "--json"]) == 0
    out, err = capsys.readouterr()
    records = json.loads(out)["predictions"]
    proba = np.array([[r["proba"][str(c)] for c in model.classes_] for r in records])
    in_folders = [str(f) for f in files if f.name[:2] in (first, second)]
    assert [Path(r["path"]).name for r in records] == [Path(f).name for f in in_folders]
    by_speaker = np.concatenate([model.predict_proba([f for f in in_folders if Path(f).name[:2] == s])
                                 for s in (first, second)])
    np.testing.assert_allclose(proba, by_speaker, atol=1e-5)
    assert not np.allclose(proba, model.predict_proba(in_folders), atol=1e-3)  # not as one speaker's
    assert "note" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a model pinned to CUDA runs here")
def test_predict_and_evaluate_run_a_model_pinned_to_cuda_with_device_auto(model, corpus, tmp_path, capsys):
    """A model fitted with device="cuda" set keeps it (its log-mel step; skorch moves the network),
    and on a machine without CUDA the commands had no way to run it: --device sets every step's."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.preprocessing import LabelEncoder

    fitted = joblib.load(model)
    pinned = tmp_path / "pinned.joblib"
    joblib.dump(fitted.set_params(logmel__device="cuda"), pinned)
    wav = str(sorted(corpus.glob("*.wav"))[0])
    assert main(["predict", str(pinned), wav]) == 2
    assert_one_line_error(capsys.readouterr().err, "runs its step 'logmel' on device='cuda', and CUDA is not "
                          "available here: add --device auto")
    assert main(["predict", str(pinned), wav, "--device", "auto"]) == 0
    assert wav in capsys.readouterr().out
    assert main(["evaluate", str(pinned), str(corpus), "--device", "cpu", "--out-dir", str(tmp_path / "e")]) == 0
    assert joblib.load(pinned).named_steps["logmel"].device == "cuda"  # the file is left as it was
    # a soft vote of pipelines: each member's steps
    vote = VotingClassifier([("a", fitted), ("b", fitted)], voting="soft")
    vote.estimators_, vote.le_ = [fitted, fitted], LabelEncoder().fit(fitted.classes_)
    vote.classes_ = vote.le_.classes_
    joblib.dump(vote, tmp_path / "vote.joblib")
    assert main(["predict", str(tmp_path / "vote.joblib"), wav]) == 2
    assert_one_line_error(capsys.readouterr().err, "runs its member 'a''s step 'logmel' on device='cuda'")
    assert main(["predict", str(tmp_path / "vote.joblib"), wav, "--device", "cpu"]) == 0
    capsys.readouterr()
    joblib.dump(fitted.set_params(logmel__device="mps"), pinned)  # unsupported anywhere
    assert main(["predict", str(pinned), wav]) == 2
    assert_one_line_error(capsys.readouterr().err, "cannot run its step 'logmel' here (device='mps' is not "
                          "supported", "add --device auto")


def test_checking_param_values_leaves_torch_global_generator_alone():
    import torch

    from sersk import CNNLSTMClassifier
    from sersk.cli import _check_network_params

    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    _check_network_params(CNNLSTMClassifier(module__hidden_size=8))  # builds the network: its weights draw
    assert torch.equal(torch.rand(3), expected)  # main() run in a host process left its generator advanced


def test_a_closed_pipe_reported_as_einval_is_not_a_user_error(tmp_path, capsys, monkeypatch):
    """Windows reports a print to a pipe whose reader stopped as EINVAL, not as a broken pipe."""
    import sersk.cli

    class ClosedPipe(io.StringIO):
        def flush(self) -> None:
            raise OSError(errno.EINVAL, "Invalid argument")

    def invalid_argument(args):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(sersk.cli, "cmd_predict", invalid_argument)
    argv = ["predict", str(tmp_path / "m.joblib"), str(tmp_path / "a.wav")]
    assert main(argv) == 2  # stdout still writable: the error is the command's, and named
    assert_one_line_error(capsys.readouterr().err, "Invalid argument")
    class FullDisk(io.StringIO):
        def flush(self) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sys, "stdout", FullDisk())
    assert main(argv) == 2  # stdout fails for another reason: not a reader that stopped
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(argv) == 141  # was "sersk: error: [Errno 22] Invalid argument", exit 2
    assert "error" not in capsys.readouterr().err


def test_characters_the_output_cannot_encode_are_escaped(model, corpus, tmp_path, monkeypatch):
    """Output redirected where the locale is not UTF-8 (Windows' ANSI code page) cannot encode every
    file name. Python's own stderr escapes already; a host's strict one is escaped too."""
    clip = tmp_path / "\u0433\u043d\u0435\u0432.wav"
    shutil.copy(next(corpus.glob("*.wav")), clip)
    out, err = (io.TextIOWrapper(io.BytesIO(), encoding="cp1252") for _ in range(2))
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["predict", str(model), str(clip)]) == 0  # the table ended in "'charmap' codec can't encode", exit 2
    assert main(["predict", str(model), str(tmp_path / "\u0433.wav")]) == 2  # the error message on a strict stderr
    assert main(["predict", str(model), "--\u0433", str(clip)]) == 2  # and argparse's usage error
    assert (out.errors, err.errors) == ("strict", "strict")  # restored
    out.flush()
    err.flush()
    assert "\\u0433\\u043d\\u0435\\u0432.wav" in out.buffer.getvalue().decode("cp1252")
    err_text = err.buffer.getvalue().decode("cp1252")
    assert "\\u0433.wav" in err_text and "does not exist" in err_text
    assert "unrecognized arguments: --\\u0433" in err_text


def test_a_reader_that_stops_early_is_not_a_user_error(tmp_path, capsys, monkeypatch):
    import sersk.cli

    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")  # as print raises under `sersk predict ... | head -1`

    monkeypatch.setattr(sersk.cli, "cmd_predict", closed_pipe)
    assert main(["predict", str(tmp_path / "m.joblib"), str(tmp_path / "a.wav")]) == 128 + signal.SIGPIPE
    assert "error" not in capsys.readouterr().err  # was "sersk: error: [Errno 32] Broken pipe", exit 2
    monkeypatch.delattr(signal, "SIGPIPE")  # as on Windows
    assert main(["predict", str(tmp_path / "m.joblib"), str(tmp_path / "a.wav")]) == 141


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_each_command_loading_a_model_says_to_load_only_trusted_ones(command, capsys):
    """A model file is a pickle, which runs code as it loads; evaluate's help did not say so."""
    assert main([command, "--help"]) == 0
    assert "load only models you trust" in " ".join(capsys.readouterr().out.split())


def test_train_refuses_an_out_that_is_one_of_its_inputs(corpus, tmp_path, capsys, monkeypatch):
    """``--out DATA/03a01Wa.wav`` replaced a training clip with the model, and exited 0."""
    clip = next(iter(sorted(corpus.glob("*.wav"))))
    rows = [f"{p},{EMOTIONS[p.name[5]][0]}" for p in sorted(corpus.glob("*.wav"))]
    table = write_csv(tmp_path / "data.csv", "path,label", rows)
    before = clip.read_bytes(), table.read_bytes()
    monkeypatch.setenv("HOME", str(tmp_path))  # DATA named from the home folder, as load_corpus reads it
    for data, out, what in ((corpus, clip, "one of the files DATA lists"), (table, table, "is DATA"),
                            ("~/data.csv", table, "is DATA")):
        assert main(["train", str(data), "--out", str(out), *FAST]) == 2
        assert_one_line_error(capsys.readouterr().err, what, "the model would replace it")
    assert (clip.read_bytes(), table.read_bytes()) == before


def test_a_read_only_file_is_not_replaced(tmp_path, monkeypatch, capsys):
    """Writing it in place fails; moving a new file over it, as every atomic save does, replaced it."""
    from sersk.utils.files import atomic_output

    kept = tmp_path / "kept.joblib"
    kept.write_bytes(b"the old model")
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == kept else access(path, mode, **kw))
    with pytest.raises(PermissionError, match="kept.joblib' .it is read-only"):
        with atomic_output(kept) as fh:
            fh.write(b"a new one")
    assert main(["train", str(tmp_path / "none"), "--out", str(kept)]) == 2  # refused before reading DATA
    assert_one_line_error(capsys.readouterr().err, "--out: cannot write", "read-only")
    assert kept.read_bytes() == b"the old model" and os.listdir(tmp_path) == ["kept.joblib"]


@pytest.mark.skipif(sys.platform == "win32", reason="control characters in file names")
def test_names_and_labels_cannot_send_escape_sequences_to_the_terminal(model, corpus, tmp_path, capsys):
    """A file name, or a CSV's label, holding an escape sequence reached the terminal as it was: it
    could clear the screen, set the window title, or erase the line saying a file was skipped; one
    holding a newline forged a line. Warnings (matplotlib's about the label it cannot draw) too."""
    clip = sorted(corpus.glob("*.wav"))[0]
    shown = tmp_path / "x\x1b]0;TITLE\x07\x1b[2Jfake.wav"
    shutil.copy(clip, shown)
    hidden = tmp_path / "bad\x1b[1A\x1b[2Kok.wav"
    hidden.write_text("not audio")
    forged = tmp_path / "x.wav\nsersk: note: all files read.wav"
    forged.write_text("not audio")
    assert main(["predict", str(model), str(shown), str(hidden), str(forged), "--skip-errors"]) == 1
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out and "\nsersk: note" not in err
    assert "x\\x1b]0;TITLE\\x07\\x1b[2Jfake.wav" in out and "skipped " in err and "bad\\x1b[1A" in err
    table = write_csv(tmp_path / "data.csv", "path,label", [f"{clip},neu\x1b[2K\x1b[1Gtral"])
    assert main(["evaluate", str(model), str(table), "--out-dir", str(tmp_path / "ev")]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "neu\\x1b[2K\\x1b[1Gtral" in out


def test_evaluate_keeps_a_read_only_output_of_the_last_run(model, corpus, tmp_path, monkeypatch, capsys):
    """evaluate moves its files in together: the move replaced a read-only metrics.json, which a
    save (atomic_output) refuses to (a diff review's find). None is moved then."""
    out = tmp_path / "ev"
    assert main(["evaluate", str(model), str(corpus), "--out-dir", str(out)]) == 0
    metrics = out / "metrics.json"
    metrics.write_text("the last run's")
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == metrics else access(path, mode, **kw))
    png = (out / "confusion_matrix.png").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["evaluate", str(model), str(corpus), "--out-dir", str(out)]) == 2
    assert_one_line_error(capsys.readouterr().err, "--out-dir: cannot write", "metrics.json' (it is read-only)")
    assert metrics.read_text() == "the last run's" and (out / "confusion_matrix.png").stat().st_mtime_ns == png
    assert sorted(p.name for p in out.iterdir()) == ["confusion_matrix.png", "metrics.json"]
    from sersk import cli  # the moves refuse too, should a file turn read-only during the run

    monkeypatch.setattr(cli, "_out_dir", lambda path, *outputs: Path(path))
    assert main(["evaluate", str(model), str(corpus), "--out-dir", str(out)]) == 2
    assert metrics.read_text() == "the last run's" and (out / "confusion_matrix.png").stat().st_mtime_ns == png


def test_reproduce_refuses_a_read_only_output_before_its_folds(corpus, tmp_path, monkeypatch, capsys):
    """Leave-one-speaker-out writes results.json at its end: a read-only one was refused only after
    every fold had trained (a diff review's find)."""
    out = tmp_path / "rep"
    out.mkdir()
    (out / "training_history_speaker03.png").write_bytes(b"the last run's")
    access = os.access
    read_only = {"training_history_speaker03.png", "training_history_backup.png"}
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path).name in read_only and mode == os.W_OK
                        else access(path, mode, **kw))
    run = ["reproduce", "--data", str(corpus), "--speaker-independent", "--out-dir", str(out), *FAST]
    assert main([*run, "--speakers", "03", "08"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--out-dir: cannot write", "training_history_speaker03.png'")
    assert sorted(p.name for p in out.iterdir()) == ["training_history_speaker03.png"]  # no fold trained
    # a finished fold's figure is not drawn again on --resume, nor a user's file: no refusal
    (out / "training_history_speaker03.png").unlink()
    read_only.discard("training_history_speaker03.png")
    assert main([*run, "--speakers", "03"]) == 0
    read_only.add("training_history_speaker03.png")
    (out / "training_history_backup.png").write_bytes(b"the user's")
    assert main([*run, "--speakers", "03", "08", "--resume"]) == 0
