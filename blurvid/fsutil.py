"""File-system steps that behave alike on Linux, macOS and Windows (standard library only)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Windows refuses to replace or move a file another program holds open (a viewer, an antivirus scan,
# OneDrive's or Dropbox's sync, the search indexer): often only for a moment
RETRY_HELD_FILES = sys.platform == "win32"


def replace(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], tries: int = 10, wait_s: float = 0.05
) -> None:
    """:func:`os.replace`, retried ``tries`` times over about 2.5 s where Windows says a file is held
    (``PermissionError``), so that a scanner's brief look does not fail a write; elsewhere, or once the
    tries are spent, the error is raised as it is."""
    for attempt in range(tries):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if not RETRY_HELD_FILES or attempt == tries - 1:
                raise
            time.sleep(wait_s * (attempt + 1))


def temp_name(path: Path, *, keep_suffix: bool = False) -> Path:
    """A fresh hidden name beside ``path`` for what becomes it: ``.<name>.<8 hex>.tmp`` (the name cut
    to 40 characters, so that a long one stays within the file system's limit), or with ``keep_suffix``
    ``.<stem>.<8 hex>.tmp<suffix>`` for writers that take the format from the suffix. Either matches
    :data:`TEMP_NAME`, so :func:`sweep_stale` finds what a killed writer left."""
    token = secrets.token_hex(4)
    if keep_suffix:
        return path.parent / f".{path.stem[:40]}.{token}.tmp{path.suffix}"
    return path.parent / f".{path.name[:40]}.{token}.tmp"


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str],
    *,
    keep_suffix: bool = False,
    publish: Callable[[Path, Path], None] | None = None,
) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path`` (its folder made if missing) to write the file to;
    when the block ends without an error, fsync that file and :func:`replace` it onto ``path``, so that
    ``path`` holds either its old bytes or all the new ones, also after a crash or a power cut. On an
    error the temporary file is removed and ``path`` left as it was. The new file's permissions are a
    normal file's (0o666 less the umask), also where the writer recreated it (safetensors does).

    The temporary is named by :func:`temp_name` (``keep_suffix`` passed on). ``publish(tmp, path)``
    replaces the final rename (e.g. one that refuses an existing ``path``); the temporary is removed
    after it either way. An OSError reserving the name is raised before anything is made (whatever
    has that name is not ours)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path, keep_suffix=keep_suffix)
    ours = True
    try:  # one try from the making on: a Ctrl-C just after it must not leave the temporary behind
        try:  # reserve the name; 0o666 lets the umask decide the permissions (mkstemp's are 0600,
            # and reading the umask means setting it, which races with other threads)
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
        except OSError:
            ours = False  # whatever has that name is not this call's
            raise
        mode = tmp.stat().st_mode & 0o777
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        (publish or replace)(tmp, path)
    finally:
        if ours:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


# the hidden names :func:`temp_name` gives: files of :func:`atomic_path` (checkpoints, results, photos,
# videos) and the staging folders of PNG frames
TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{8}\.tmp.*")


def sweep_stale(
    folder: str | os.PathLike[str], min_age_s: float, name: re.Pattern[str] = TEMP_NAME
) -> list[str]:
    """Remove the entries of ``folder`` (files and folders, not recursively) whose whole name matches
    ``name`` and that nothing has touched for ``min_age_s`` seconds (by the later of their modification
    and status-change times): temporaries a killed writer (SIGKILL, a power cut) left; a live writer's
    are fresh. Best effort: an entry that cannot be read or removed, or a folder that cannot be listed,
    is left. Returns the names removed."""
    cutoff = time.time() - min_age_s
    removed: list[str] = []
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not name.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if max(st.st_mtime, st.st_ctime) >= cutoff:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
                removed.append(entry.name)
    return removed


class Busy(OSError):
    """Another process holds the lock :func:`exclusive` asked for."""


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock on the open file ``fd`` without waiting; False if another process has it."""
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (made if missing) while the block runs, so that
    two processes never work in one place at once; removed when the block ends. The lock is the
    operating system's (``flock``, ``msvcrt.locking`` on Windows): a process that dies, even by
    SIGKILL, lets go of it, so a leftover file never blocks anyone.

    Raises:
        Busy: another process holds it now (at once, without waiting).
        OSError: the file cannot be made (no permission, a read-only disk).
    """
    path = Path(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if not _try_lock(fd):
            os.close(fd)
            raise Busy(f"{path}: held by another process")
        try:  # a holder that ended between our open and our lock removed the file we hold: take the new one
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        if sys.platform == "win32":  # Windows cannot remove an open file: close it first
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
        else:  # removed while still locked, so that no one locks this file after we let go of it
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)
