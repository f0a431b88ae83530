"""``sftdata export``: write JSONL that other trainers load as it is, with splits and a dataset card."""

from __future__ import annotations

from pathlib import Path

import click

from ..core.settings import click_options, from_options
from ..export.config import ExportConfig
from ..export.stage import export, read_inputs
from ._options import json_option, print_summary


@click.command("export")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: <format>/{train,validation,test}.jsonl, dataset_info.json, README.md.")
@click_options(ExportConfig)
@json_option
def command(inputs: tuple[Path, ...], out: Path, as_json: bool, **options: object) -> None:
    """Export INPUTS (any of: records, alpaca, sharegpt, messages, prompt-completion, seed tasks).

    \b
    Example:
      sftdata export runs/demo/accepted.jsonl --out out/demo --format alpaca --format messages --hf
    """
    config = from_options(ExportConfig, options)
    config.validate()  # option errors before reading large inputs
    records = read_inputs(inputs)
    summary = export(records, out, config.formats, split=config.split, seed=config.seed, system=config.system,
                     hf=config.hf, license=config.license,
                     license_name=config.license_name, name=config.name, sources=inputs)
    if config.push_to_hub:
        from ..export.hub import push_to_hub

        summary["hub"] = push_to_hub(out, summary, config.push_to_hub, private=config.private)
    if as_json:
        print_summary("export", summary, True)
        return
    shown = {k: summary[k] for k in ("out", "records", "splits", "seed") if k in summary}
    shown["formats"] = ", ".join(summary["formats"])
    shown["omitted_splits"] = ", ".join(summary["omitted_splits"]) or "none"
    shown["dataset_info"] = summary["dataset_info"]
    shown["card"] = summary.get("card", "")
    if "hub" in summary:
        shown["hub"] = f"{summary['hub']['url']} ({len(summary['hub']['files'])} files)"
    for warning in summary.get("warnings", []):
        shown.setdefault("warning", warning)
    print_summary("export", shown, False)
