"""``sftdata review``: a local page for human feedback on records."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("review")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--feedback", type=click.Path(dir_okay=False, path_type=Path),
              help="Where actions are appended (default: feedback.jsonl beside PATH).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback needs --allow-remote.")
@click.option("--port", type=int, default=8765, show_default=True, help="Port to bind.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a non-loopback --host; every request then needs the token in the printed URL.")
@click.option("--token", help="The token for --allow-remote (default: a random one).")
@click.option("--reviewer", help="A name stored with each action.")
def command(path: Path, feedback: Path | None, host: str, port: int, allow_remote: bool, token: str | None,
            reviewer: str | None) -> None:
    """Review the records of PATH in a browser: keep / reject, score, edit the output, A/B for pairs.

    \b
    Keys: k keep, x reject, 1-9 and 0 score 1-10, e edit the output (Ctrl+Enter saves),
    a / b / t choose for a pair (output vs meta.output_b), u undo, arrows move,
    g first unreviewed. Every action is appended to feedback.jsonl at once; reopening
    resumes at the first unreviewed record. `sftdata select` and `sftdata judge --gold`
    read the file.

    \b
    Example:
      sftdata review runs/demo/judge/accepted.jsonl
    """
    from ..review import serve

    serve(path, feedback, host=host, port=port, allow_remote=allow_remote, token=token, reviewer=reviewer,
          announce=lambda m: click.echo(m, err=True))
