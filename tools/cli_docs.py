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
Models, figures and JSON files are written atomically: a failed, interrupted or terminated run
leaves no partial file and keeps an existing one.

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
    return "\n".join(lines)


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if PAGE.read_text(encoding="utf-8") == text else 1)
    PAGE.write_text(text, encoding="utf-8")
