"""The filter stage as a step of ``sftdata run``."""

from __future__ import annotations

from typing import Any

from ..core.stage import StageContext, StageResult, kept


def run(ctx: StageContext, config: Any) -> StageResult:
    from .stage import run_filter

    # generated records are compared with the seeds they grew from (not when the seeds are the input)
    against = ctx.seed_files() if ctx.output_of("generate") is not None else []
    result = run_filter(ctx.data(), ctx.out, config, against, progress=ctx.progress)
    return StageResult(kept([ctx.out / "accepted.jsonl"], "filter"), result)
