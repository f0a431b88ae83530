"""Running the real `sftdata` entry point in-process from a test."""

from __future__ import annotations

from sftdata.cli import main


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``sftdata ARGS`` through ``sftdata.cli.main``."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
