"""``sftdata filter``: ROUGE-L novelty (exact, fast, Chinese-aware), length, blacklist, format, language rules."""

from __future__ import annotations

from pathlib import Path

import click

from ..core.errors import ConfigError
from ..core.settings import click_options, from_options
from ..filter.config import FilterConfig
from ..filter.rules import describe_rules
from ..filter.stage import run_filter
from ._options import json_option, print_summary


@click.command("filter", epilog=describe_rules())
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: accepted.jsonl, rejected.jsonl (reason = the rule's name, with detail), "
                   "filter_summary.json.")
@click.option("--against", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL whose instructions are preloaded into the ROUGE-L index (e.g. the seeds); "
                   "they are not written out. Repeatable.")
@click_options(FilterConfig)
@click.option("--ray", "ray_address", metavar="ADDRESS|auto|local",
              help="Shard the filter over a Ray cluster (needs sftdata[ray]; docs/cluster.md): 'local' starts one "
                   "here, 'auto' joins this node's, or the head's address. Kept instructions stay pairwise below "
                   "the ROUGE-L threshold across shards.")
@click.option("--shards", type=click.IntRange(min=1), default=None,
              help="With --ray: slices of the input (default: the cluster's CPUs). The same count gives "
                   "byte-identical output.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
def command(inputs: tuple[Path, ...], out_dir: Path, against: tuple[Path, ...], no_progress: bool, as_json: bool,
            ray_address: str | None, shards: int | None, **options: object) -> None:
    """Filter INPUTS (records, alpaca, sharegpt, messages, prompt-completion or seed tasks).

    Keeps a record when every rule passes; a rejected record goes to rejected.jsonl with the
    name of the rule as its reason. ROUGE-L makes exactly the decisions of rouge-score scored
    against every kept instruction (Self-Instruct / Alpaca), only much faster.

    \b
    Examples:
      sftdata filter runs/en/accepted.jsonl --out runs/en-filtered --against seeds/en.jsonl
      sftdata filter data.jsonl --out out --lang zh --no-rule format,blacklist
    """
    config = from_options(FilterConfig, options).validate()
    engine = None
    if ray_address is not None:
        import functools

        from ..cluster.filter import sharded_filter_records  # ray only when asked for

        engine = functools.partial(sharded_filter_records, address=ray_address, shards=shards)
    elif shards is not None:
        raise ConfigError("needs --ray", "--shards")
    summary = run_filter(inputs, out_dir, config, against, progress=not no_progress and not as_json,
                         engine=engine)
    if not as_json:
        summary["by_reason"] = {k: v for k, v in summary["by_reason"].items() if v}
    print_summary("filter", summary, as_json)
