"""Words for messages, without scikit-learn or torch: the command line's --help and --version need no more."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: "1 clip", "3 clips", "2 entries"."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def repeated(values: Sequence[Any]) -> list[Any]:
    """The values that occur more than once in ``values`` (hashable and sortable, as checked labels
    are), sorted, each once."""
    seen: set[Any] = set()
    return sorted({value for value in values if value in seen or seen.add(value)})  # type: ignore[func-returns-value]


def printable(text: str, keep: str = "") -> str:
    """``text`` with its control characters, but those in ``keep``, written as escapes (``\\x1b``,
    ``\\n``), and a byte a file name could not be decoded from as one too (``\\x9b``): a file name,
    label or speaker holding an escape sequence cleared the screen, set the window title, or moved
    the cursor to hide a line when printed to a terminal, and one holding a newline forged a line."""
    return "".join(
        repr(c)[1:-1] if c not in keep and unicodedata.category(c) == "Cc"
        else f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF  # surrogateescape's undecodable byte
        else c
        for c in text
    )
