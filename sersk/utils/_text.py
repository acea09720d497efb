"""Words for messages, without scikit-learn or torch: the command line's --help and --version need no more."""

from __future__ import annotations

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
