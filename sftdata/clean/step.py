"""The clean stage as a step of ``sftdata run``."""

from __future__ import annotations

from typing import Any

from ..core.stage import StageContext, StageResult, kept


def run(ctx: StageContext, config: Any) -> StageResult:
    from .stage import run_clean

    result = run_clean(ctx.data(), ctx.out, config.validate(), progress=ctx.progress)
    return StageResult(kept([ctx.out / "accepted.jsonl"], "clean"), result)
