"""blurvid.fsutil: a file Windows holds open for a moment does not fail a write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from blurvid import fsutil


def test_a_held_file_is_retried_on_windows_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = tmp_path / "new", tmp_path / "old"
    real, calls = os.replace, []

    def held_twice(a, b):  # type: ignore[no-untyped-def]
        calls.append(a)
        if len(calls) <= 2:
            raise PermissionError(13, "The process cannot access the file", str(b))
        real(a, b)

    monkeypatch.setattr(fsutil.os, "replace", held_twice)
    monkeypatch.setattr(fsutil.time, "sleep", lambda s: None)
    src.write_text("result")
    monkeypatch.setattr(fsutil, "RETRY_HELD_FILES", False)  # elsewhere a refusal is real: raised at once
    with pytest.raises(PermissionError):
        fsutil.replace(src, dst)
    assert len(calls) == 1
    calls.clear()
    monkeypatch.setattr(fsutil, "RETRY_HELD_FILES", True)
    fsutil.replace(src, dst)
    assert len(calls) == 3 and dst.read_text() == "result" and not src.exists()
    tries = []

    def held(a, b):  # type: ignore[no-untyped-def]
        tries.append(a)
        raise PermissionError(13, "held")

    monkeypatch.setattr(fsutil.os, "replace", held)
    with pytest.raises(PermissionError):  # held for good: the tries end, the error stands
        fsutil.replace(dst, src, tries=3)
    assert len(tries) == 3


def test_a_held_file_is_retried_with_growing_waits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """10 tries by default, waiting 0.05, 0.1, ... 0.45 s between them: about 2.5 s in all."""
    waits: list[float] = []

    def held(a, b):  # type: ignore[no-untyped-def]
        raise PermissionError(13, "held")

    monkeypatch.setattr(fsutil.os, "replace", held)
    monkeypatch.setattr(fsutil.time, "sleep", waits.append)
    monkeypatch.setattr(fsutil, "RETRY_HELD_FILES", True)
    with pytest.raises(PermissionError):
        fsutil.replace(tmp_path / "a", tmp_path / "b")
    assert waits == pytest.approx([0.05 * k for k in range(1, 10)])
    assert sum(waits) == pytest.approx(2.25)


def test_only_a_held_file_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing source is no file a scanner holds: raised at once, also on Windows."""
    waits: list[float] = []
    monkeypatch.setattr(fsutil.time, "sleep", waits.append)
    monkeypatch.setattr(fsutil, "RETRY_HELD_FILES", True)
    with pytest.raises(FileNotFoundError):
        fsutil.replace(tmp_path / "missing", tmp_path / "b")
    assert waits == []
