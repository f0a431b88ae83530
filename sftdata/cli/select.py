"""``sftdata select``: keep records by judge score, per-criterion pass or human labels."""

from __future__ import annotations

from pathlib import Path

import click

from ..core import settings
from ..select.config import SelectConfig
from ._options import json_option, print_summary


@click.command("select")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: accepted.jsonl, rejected.jsonl (reason and score), stats.json.")
@settings.click_options(SelectConfig)
@json_option
def command(inputs: tuple[Path, ...], out: Path, as_json: bool, **kwargs) -> None:
    """Keep the judged records of INPUTS (from `sftdata judge`) that pass; people's labels win.

    \b
    Order of decisions per record:
      1. a person's label (feedback.jsonl from `sftdata review`, or meta.human): reject
         drops it, keep keeps it whatever the judge said; a person's score replaces the
         judge's; an edited output replaces the output
      2. no score (the judge's reply was unreadable): dropped as 'unjudged'
      3. --require CRITERION: each must pass ('criterion_failed')
      4. --min-score: 'below_min_score'
      5. --top FRACTION of what is left, by score: 'below_top_fraction'

    \b
    Examples:
      sftdata select runs/j/accepted.jsonl --out runs/sel --min-score 7
      sftdata select runs/j/accepted.jsonl --out runs/sel --require all --top 0.3
    """
    from ..select.stage import select

    config = settings.from_options(SelectConfig, kwargs)
    print_summary("select", select(list(inputs), config, out), as_json)
