"""The report stage as a step of ``sftdata run``: one HTML page over the whole run directory."""

from __future__ import annotations

from typing import Any

from ..core.stage import StageContext, StageResult


def run(ctx: StageContext, config: Any) -> StageResult:
    from .stage import build_report

    finetune = str(ctx.run_dir / "finetune") if ctx.output_of("finetune") is not None else None
    seeds = ctx.seeds[0] if ctx.seeds else None
    result = build_report([str(ctx.run_dir)], ctx.out, finetune=finetune, seeds=seeds, log=ctx.log)
    return StageResult([ctx.out / "report.html"], result)
