"""The ``blurvid`` console script: :func:`blurvid.cli.main`, with a Ctrl-C during its imports (typer,
rich: the first ~0.1 s) ended as quietly as one later, not with Python's traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    run()
