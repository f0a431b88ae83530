"""``sftdata export``: write JSONL that other trainers load as it is, with splits and a dataset card."""

from __future__ import annotations

from pathlib import Path

import click

from ..export.stage import FORMATS, export, parse_formats, parse_split, read_inputs
from ._options import json_option, print_summary


@click.command("export")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: <format>/{train,validation,test}.jsonl, dataset_info.json, README.md.")
@click.option("--format", "formats", multiple=True, default=("alpaca",), show_default=True,
              help=f"Output format, repeatable or comma-separated: {', '.join(FORMATS)}.")
@click.option("--split", default="0.9,0.05,0.05", show_default=True,
              help="train,validation,test ratios summing to 1. A split with ratio 0 is not written.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split (same seed, same split).")
@click.option("--system", help="System prompt for records that have none of their own.")
@click.option("--hf", is_flag=True, help="Also save a datasets DatasetDict (hf/<format>, for load_from_disk) and Parquet files "
                             "(parquet/<format>/<split>.parquet).")
@click.option("--license", "license_id", help="License identifier for the dataset card, e.g. apache-2.0.")
@click.option("--name", help="Dataset name in dataset_info.json and the card. Default: the --out folder name.")
@json_option
def command(inputs: tuple[Path, ...], out: Path, formats: tuple[str, ...], split: str, seed: int,
            system: str | None, hf: bool, license_id: str | None, name: str | None, as_json: bool) -> None:
    """Export INPUTS (any of: records, alpaca, sharegpt, messages, prompt-completion, seed tasks).

    \b
    Example:
      sftdata export runs/demo/accepted.jsonl --out out/demo --format alpaca --format messages --hf
    """
    chosen = parse_formats(formats)
    ratios = parse_split(split)  # option errors before reading large inputs
    records = read_inputs(inputs)
    summary = export(records, out, chosen, split=ratios, seed=seed, system=system, hf=hf,
                     license=license_id, name=name, sources=inputs)
    if as_json:
        print_summary("export", summary, True)
        return
    shown = {k: summary[k] for k in ("out", "records", "splits", "seed") if k in summary}
    shown["formats"] = ", ".join(summary["formats"])
    shown["omitted_splits"] = ", ".join(summary["omitted_splits"]) or "none"
    shown["dataset_info"] = summary["dataset_info"]
    shown["card"] = summary.get("card", "")
    for warning in summary.get("warnings", []):
        shown.setdefault("warning", warning)
    print_summary("export", shown, False)
