"""Write docs/cli.md, the command-line reference, from sersk's argument parser.

    python tools/cli_docs.py          # rewrite docs/cli.md
    python tools/cli_docs.py --check  # exit 1 when docs/cli.md is out of date (the tests do this)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cli.md"

INTRO = """\
# Command line

<!-- Generated from sersk's argument parser by tools/cli_docs.py: edit the parser, then run it. -->

The `sersk` command is installed with the package (`pip install -e .`). Each subcommand calls one
public function of the library and prints its result, so anything it does can be done from
Python too (named under each subcommand). A mistake in the input (a missing file, a malformed
CSV, a file that is not a model, an option out of range) ends with one line
`sersk: error: <message>` on stderr (after the usage lines, for a mistake in the options
themselves) and exit status 2, before any long work starts; Ctrl-C exits
with status 130, and SIGTERM (`kill`, a job scheduler; `timeout` reports its own 124) with 143.
`predict`, `train` and `evaluate` exit with 1 when `--skip-errors` left files out. Running out of
memory or disk space ends with one line saying which (for memory, what to lower: `--batch-size`,
`--chunk-size`, `--n-jobs`) and exit status 71, so that a scheduler can tell the machine's limits
from a mistake in the command; a file that cannot be decoded in the memory free is that file's
error (2, or skipped with `--skip-errors`), and a process the system kills for its memory (a
container's limit) ends with the system's 137 and no message. A command whose
reader stops early (`sersk predict ... --json | head -1`) ends at once with 141 and no message, as
other Unix commands do: a `train` or `reproduce` piped into `head` stops training there, so send a
long run's output to a file instead (on Windows too, where the closed pipe is reported differently).
A character that the output's encoding lacks (a file name or label, in output redirected to a file
or a pipe where the locale is not UTF-8, such as Windows' ANSI code page) is printed as an escape
(`\\u0433`) instead of ending the command in an encoding error; `predict --json` and the JSON files
are ASCII with escapes anyway.
Models, figures and JSON files are written atomically: a failed, interrupted or terminated run
leaves no partial file and keeps an existing one; `evaluate` and `reproduce` (on the reference
split) move their figures and JSON into `--out-dir` together once the run is done, so a run cut
short leaves the last run's set as it was. `reproduce --speaker-independent` writes each fold's
figure as the fold ends, beside its fold file in `folds/`, so that `--resume` finds both.

Progress bars appear only when stderr is a terminal; redirected output (a log file) holds no bars
and no colour codes.
"""

PYTHON = {
    "train": "`sersk.datasets.load_corpus`, `sersk.make_pipeline(...).fit(...)`, `joblib.dump`",
    "predict": "`sersk.datasets.find_audio_files`, `sersk.load_model`, `sersk.predict_files`",
    "evaluate": "`sersk.datasets.load_corpus`, `sersk.load_model`, `sersk.evaluation.evaluate_model`",
    "reproduce": "`sersk.datasets.fetch_emodb`, `sersk.evaluation.run_reference_protocol` or "
                 "`sersk.evaluation.run_leave_one_speaker_out`",
}

OUTPUT = {
    "predict": """\
With `--json`, standard output is one JSON object: `predictions`, a list with one record per file
read, in the order given (`path`; `label`, the predicted class; `proba`, each class's probability),
and `errors`, each file left out by `--skip-errors` with its message:

```json
{"predictions": [{"path": "clips/a.wav", "label": "anger",
                  "proba": {"anger": 0.91, "boredom": 0.01, "...": 0.0}}],
 "errors": {"clips/broken.wav": "audio file 'clips/broken.wav' cannot be decoded (...)"}}
```

Without it, a table: one row per file, its predicted label and each class's probability.
""",
    "evaluate": """\
`DIR/metrics.json` holds `model` and `data` (the arguments), `n_files` (the files scored),
`accuracy`, `accuracy_ci95` (its 95 % Wilson interval, `[low, high]`, taking the files as
independent draws: files of one speaker are not, so for other speakers it is too narrow), `uar`
(the mean recall over the labels of DATA), `recall_per_class`,
`confusion_matrix` (`labels`, and `counts` with a row per true label and a column per
prediction, in the order of `labels`), `unknown_labels` (labels of DATA the model never saw:
their clips count as errors), `classification_report` (scikit-learn's, as a dict),
`predictions` (per file: `path`, `label`, the true label, and `predicted`) and `errors` (each
file left out, with its message). `DIR/confusion_matrix.png` draws the counts.

A model that standardises each speaker by itself (`scale__scope=speaker`) has each speaker's files
predicted together, the speakers as DATA names them (Emo-DB's file names, a CSV's `speaker`
column); where DATA names none, all its files are one speaker's, and `evaluate` says so. `predict`
takes all the files given as one speaker's, and says so, unless `--speaker-per-folder` makes each
folder's files one speaker's (a folder given, or the folder of each file given).
""",
    "reproduce": """\
`DIR/results.json` holds the run's settings (`command`, `corpus`, `protocol`, `preset`, `quick`,
`seed`, `n_augmentations`, `epochs`, `params` given with `--param`, `device`), its test scores as in
`evaluate`'s `metrics.json` (`n_files`, `accuracy`, `accuracy_ci95`, `uar`, `recall_per_class`,
`confusion_matrix` with its `labels` and `counts`), `wall_time_s`, `peak_rss_mib` and `versions`. The reference split adds
`n_train`, `n_validation`, `n_test`, `history` (each epoch's losses and accuracies) and
`predictions` (per test clip: `path`, `label`, `predicted` and `proba`); on Emo-DB,
`reference_accuracy`, the published 63.29 %. Leave-one-speaker-out adds `held_out_speakers`,
`n_speakers`, `folds_run`, `transductive`, `per_speaker` (per fold: the held-out `speaker`, its
scores, `n_train_clips`, `n_validation_clips`, `history`, `wall_time_s` and `predictions`; the
scores above pool the folds), `mean_speaker_accuracy`, `mean_speaker_uar`,
`speaker_bootstrap_ci95` (95 % intervals of the pooled `accuracy` and `uar` over the held-out
speakers drawn again with replacement, `n_resamples` times, seeded: how much the scores depend on
which speakers were recorded, a rough guide with as few as ten; null for fewer than five folds),
`folds_loaded` (with `--resume`) and, on
Emo-DB, `published` and `project_bar`. Each finished fold is also written to `DIR/folds/` as it
ends. The figures (`*.png`) are written beside `results.json`.
""",
}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | meaning | default |", "|---|---|---|"]
    for action in parser._actions:  # argparse's list of arguments, in the order they were added
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            name = ", ".join(action.option_strings)
            if action.nargs != 0:
                metavar = action.metavar or (
                    "{" + ",".join(action.choices) + "}" if action.choices else action.dest.upper())
                name += f" {metavar}"
        else:
            name = action.metavar or action.dest
            name += " ..." if action.nargs == "+" else ""
        if action.required and action.option_strings:
            default = "required"
        elif action.option_strings and action.nargs != 0 and action.default is not None and action.default != []:
            default = f"`{action.default}`"
        else:
            default = ""
        rows.append(f"| `{_cell(name)}` | {_cell(action.help or '')} | {default} |")
    return rows


def render() -> str:
    """The page, from ``sersk.cli.build_parser()``."""
    from sersk.cli import build_parser

    parser = build_parser()
    lines = [INTRO, f"{_cell(parser.description)}", "", *_rows(parser), ""]
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in subparsers.choices.items():
        lines += [f"## sersk {name}", "", _cell(sub.description or ""), "", f"In Python: {PYTHON[name]}.", ""]
        lines += [*_rows(sub), ""]
        if name in OUTPUT:
            lines += ["### Output", "", OUTPUT[name]]
    return "\n".join(lines)


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if PAGE.read_text(encoding="utf-8") == text else 1)
    PAGE.write_text(text, encoding="utf-8")
