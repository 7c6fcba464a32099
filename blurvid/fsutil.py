"""File-system steps that behave alike on Linux, macOS and Windows (standard library only)."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path`` (its folder made if missing) to write the file to;
    when the block ends without an error, fsync that file and :func:`replace` it onto ``path``, so that
    ``path`` holds either its old bytes or all the new ones, also after a crash or a power cut. On an
    error the temporary file is removed and ``path`` left as it was. The new file's permissions are a
    normal file's (0o666 less the umask), also where the writer recreated it (safetensors does)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    # reserve the name; 0o666 lets the umask decide the permissions (mkstemp's are 0600, and reading
    # the umask means setting it, which races with other threads)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
    mode = tmp.stat().st_mode & 0o777
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
