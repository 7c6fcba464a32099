"""File-system steps that behave alike on Linux, macOS and Windows (standard library only)."""

from __future__ import annotations

import os
import sys
import time

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
