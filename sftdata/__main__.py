"""``python -m sftdata``: the same as the ``sftdata`` command (tests run it this way for exit codes and kills)."""

from sftdata.cli import main

if __name__ == "__main__":
    main()
