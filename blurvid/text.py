"""Small text helpers for messages, shared by the CLI and the library (standard library only, so the
CLI can use them without loading torch)."""

from __future__ import annotations

from collections.abc import Sequence


def first_few(names: Sequence[str], n: int = 3) -> str:
    """The first ``n`` of ``names``, then how many more: ``'a, b, c and 4 more'``."""
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more
