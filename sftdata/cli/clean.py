"""``sftdata clean``: normalize text and remove refusals, truncations, echoes, loops and length outliers."""

from __future__ import annotations

from pathlib import Path

import click

from ..clean.stage import GROUPS, RULES, CleanConfig, run_clean
from ._options import json_option, print_summary

_RULE_NAMES = ", ".join(list(GROUPS) + [r for r in RULES if r != "pii"])


@click.command("clean")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: accepted.jsonl, rejected.jsonl (with each rule's name), stats.json.")
@click.option("--no-rule", "no_rule", multiple=True, metavar="NAME",
              help=f"Switch a rule off (repeatable or comma-separated): {_RULE_NAMES}.")
@click.option("--mask-pii", is_flag=True, help="Replace e-mails, phone and ID numbers with [EMAIL], [PHONE], "
                                               "[ID_NUMBER].")
@click.option("--outlier-z", type=float, default=3.5, show_default=True,
              help="Robust z-score (median/MAD of log output length, per language and task type) above which "
                   "an output is too long.")
@click.option("--outlier-short", is_flag=True,
              help="Also remove unusually short outputs (off: short answers, labels and rewrites are usually right).")
@json_option
def command(inputs: tuple[Path, ...], out: Path, no_rule: tuple[str, ...], mask_pii: bool, outlier_z: float,
            outlier_short: bool, as_json: bool) -> None:
    """Clean INPUTS (records, alpaca, sharegpt, messages, prompt-completion or seed tasks).

    \b
    Example:
      sftdata clean runs/demo/accepted.jsonl --out runs/demo-clean --mask-pii
    """
    config = CleanConfig.from_options(no_rule, mask_pii=mask_pii, outlier_z=outlier_z, outlier_short=outlier_short)
    summary = run_clean(inputs, out, config)
    if not as_json:
        summary = {k: v for k, v in summary.items() if k not in ("outlier_groups", "rules")}
    print_summary("clean", summary, as_json)
