"""blurvid.fsutil: a file Windows holds open for a moment does not fail a write."""

from __future__ import annotations

import os
import re
import threading
import time
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


def _fsynced_then_replaced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record fsutil's fsync and replace calls as ``(kind, path)``; the file synced is named by inode."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, fsutil.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", str(os.fstat(fd).st_ino)))
        real_fsync(fd)

    def replace(src, dst, *a):  # type: ignore[no-untyped-def]
        events.append(("replace", str(os.stat(src).st_ino)))
        real_replace(src, dst, *a)

    monkeypatch.setattr(fsutil.os, "fsync", fsync)
    monkeypatch.setattr(fsutil, "replace", replace)
    return events


def test_atomic_path_syncs_then_renames_and_leaves_the_old_file_on_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _fsynced_then_replaced(monkeypatch)
    target = tmp_path / "new folder" / "résultat.json"
    with fsutil.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".résultat.json.") and tmp.exists()
        tmp.write_text("one")
    assert target.read_text() == "one" and os.listdir(target.parent) == ["résultat.json"]
    assert [k for k, _ in events] == ["fsync", "replace"] and events[0][1] == events[1][1]
    with pytest.raises(RuntimeError), fsutil.atomic_path(target) as tmp:
        tmp.write_text("half of tw")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "one" and os.listdir(target.parent) == ["résultat.json"]
    if os.name == "posix":
        umask = os.umask(0)
        os.umask(umask)
        assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_result_json_training_checkpoints_and_exports_are_synced_before_they_replace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename without fsync can leave an empty ``last.pt`` after a power cut: the run's only copy."""
    import torch

    from blurvid.evaluate import write_json
    from blurvid.train import loop
    from blurvid.weights import save_checkpoint

    events = _fsynced_then_replaced(monkeypatch)
    writes = {
        "r.json": lambda p: write_json({"psnr": float("nan")}, p),
        "last.pt": lambda p: loop._atomic_save({"it": 3}, p),
        "best.safetensors": lambda p: save_checkpoint(p, {"w": torch.ones(2)}, arch="dm", config={}),
    }
    for name, write in writes.items():
        events.clear()
        write(tmp_path / name)
        assert [k for k, _ in events] == ["fsync", "replace"] and events[0][1] == events[1][1], name
    assert torch.load(tmp_path / "last.pt") == {"it": 3}
    with pytest.raises(TypeError, match="pickle"):  # a lock does not pickle: the old checkpoint stays
        loop._atomic_save({"it": 4, "lock": threading.Lock()}, tmp_path / "last.pt")
    assert torch.load(tmp_path / "last.pt") == {"it": 3}
    assert sorted(os.listdir(tmp_path)) == ["best.safetensors", "last.pt", "r.json"]


def test_sweep_stale_removes_only_old_temporaries(tmp_path: Path) -> None:
    """A SIGKILL mid-write leaves a hidden temporary (a full photo, a 100 MB ``last.pt``) for good."""
    old = [tmp_path / ".last.pt.0123abcd.tmp", tmp_path / ".a_sharp.89abcdef.tmp.png"]
    for p in old:
        p.write_bytes(b"half")
    (tmp_path / ".clip.fedcba98.tmp").mkdir()  # a frames folder being staged
    (tmp_path / ".clip.fedcba98.tmp" / "frame_0001.png").write_bytes(b"x")
    keep = [tmp_path / ".hidden.jpg", tmp_path / "last.pt", tmp_path / ".x.0123abc.tmp"]  # 7 hex: not ours
    for p in keep:
        p.write_bytes(b"the user's")
    time.sleep(0.4)
    fresh = tmp_path / ".best.safetensors.00ff00ff.tmp"  # a live writer's
    fresh.write_bytes(b"live")
    removed = fsutil.sweep_stale(tmp_path, 0.2)
    assert sorted(removed) == [".a_sharp.89abcdef.tmp.png", ".clip.fedcba98.tmp", ".last.pt.0123abcd.tmp"]
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in [*keep, fresh])
    assert fsutil.sweep_stale(tmp_path / "missing", 0.0) == []  # best effort: no folder, nothing to do
    assert fsutil.sweep_stale(tmp_path, 0.0, re.compile(r"\.hidden\..*")) == [".hidden.jpg"]


def test_atomic_path_keeps_a_suffix_cuts_a_long_name_and_takes_a_publish_step(tmp_path: Path) -> None:
    """A 250-character file name gave a temporary over the file systems' 255-byte limit; encoders that
    take the format from the suffix (Pillow, ffmpeg) need it on the temporary; a publish step that
    refuses (an output that appeared meanwhile) leaves no temporary."""
    long = tmp_path / ("x" * 245 + ".json")
    with fsutil.atomic_path(long) as tmp:
        assert len(tmp.name) == 1 + 40 + 1 + 8 + 4 and fsutil.TEMP_NAME.fullmatch(tmp.name)
        tmp.write_text("{}")
    assert long.read_text() == "{}"
    published: list[tuple[str, str]] = []

    def publish(src: Path, dst: Path) -> None:
        published.append((src.name, dst.name))
        raise FileExistsError(dst)

    with (
        pytest.raises(FileExistsError),
        fsutil.atomic_path(tmp_path / "a_sharp.png", keep_suffix=True, publish=publish) as tmp,
    ):
        assert (
            tmp.suffix == ".png" and tmp.name.startswith(".a_sharp.") and fsutil.TEMP_NAME.fullmatch(tmp.name)
        )
        tmp.write_bytes(b"png")
    assert published == [(tmp.name, "a_sharp.png")]
    assert sorted(os.listdir(tmp_path)) == [long.name]


def test_exclusive_lock_is_refused_while_held_and_freed_by_a_killed_holder(tmp_path):
    """Another process's lock is refused at once; one killed by SIGKILL (no clean-up) leaves its file
    behind, which blocks no one."""
    import subprocess
    import sys

    from blurvid.fsutil import Busy, exclusive

    lock = tmp_path / ".lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from blurvid.fsutil import exclusive\n"
            f"with exclusive({str(lock)!r}):\n    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Busy, match=r"\.lock: held by another process"), exclusive(lock):
            pass
    finally:
        holder.kill()
        holder.wait()
    assert lock.exists()  # the killed holder never removed it
    with exclusive(lock):
        with pytest.raises(Busy), exclusive(lock):  # one holder at a time within a process too
            pass
    assert not lock.exists()
    with exclusive(lock):  # and it can be taken again
        assert lock.exists()
