"""The ``blurvid`` console script: :func:`blurvid.cli.main`, with a Ctrl-C during its start-up (typer,
rich and blurvid's own imports, before the command takes Ctrl-C over) ended as quietly as one later, not
with Python's traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:  # the command too: it imports more before it takes over Ctrl-C itself
        from .cli import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
