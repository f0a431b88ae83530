"""``sftdata clean``: normalize text and remove refusals, truncations, echoes, loops and length outliers."""

from __future__ import annotations

from pathlib import Path

import click

from ..clean.config import CleanConfig
from ..clean.stage import run_clean
from ..core.settings import click_options, from_options
from ._options import json_option, print_summary


@click.command("clean")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: accepted.jsonl, rejected.jsonl (with each rule's name), stats.json.")
@click_options(CleanConfig)
@json_option
def command(inputs: tuple[Path, ...], out: Path, as_json: bool, **options: object) -> None:
    """Clean INPUTS (records, alpaca, sharegpt, messages, prompt-completion or seed tasks).

    \b
    Example:
      sftdata clean runs/demo/accepted.jsonl --out runs/demo-clean --mask-pii
    """
    config = from_options(CleanConfig, options).validate()
    summary = run_clean(inputs, out, config)
    if not as_json:
        summary = {k: v for k, v in summary.items() if k not in ("outlier_groups", "rules")}
    print_summary("clean", summary, as_json)
