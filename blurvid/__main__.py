"""``python -m blurvid`` — same as the ``blurvid`` command."""

from .cli import main

if __name__ == "__main__":
    main()
