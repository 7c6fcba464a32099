"""``python -m blurvid`` — same as the ``blurvid`` command."""

from ._entry import main

if __name__ == "__main__":
    main()
