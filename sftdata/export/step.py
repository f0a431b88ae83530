"""The export stage as a step of ``sftdata run``: the run's final dataset, in every chosen format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.stage import StageContext, StageResult


def run(ctx: StageContext, config: Any) -> StageResult:
    from ..core.records import read_all, write_jsonl
    from .stage import export

    inputs = ctx.data()
    records = read_all(inputs)
    # the run's final dataset at the top of the run directory (docs/architecture.md), which the report reads
    write_jsonl(ctx.run_dir / "accepted.jsonl", records)
    result = export(records, ctx.out, config.formats, split=config.split, seed=ctx.seed, system=config.system,
                    hf=config.hf, license=config.license,
                    license_name=config.license_name, name=ctx.run_dir.name, sources=inputs)
    return StageResult([ctx.out], result)


def exported_file(export_dir: Path, split: str) -> Path:
    """The first non-empty ``split`` file an export wrote, in the formats' order of preference for
    training (core.formats.for_training: messages, sharegpt, alpaca, prompt-completion)."""
    from ..core.formats import for_training

    for fmt in for_training():
        path = export_dir / fmt.name / f"{split}.jsonl"
        if path.exists() and path.stat().st_size > 0:
            return path
    raise FileNotFoundError(f"no exported {split} split under {export_dir}")
