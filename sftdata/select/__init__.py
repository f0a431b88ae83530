"""The select stage: keep records by judge score (``--min-score``, ``--top``), per-criterion pass, or human
labels, which override the judge. Dropped records go to ``rejected.jsonl`` with the reason and the score.

    from sftdata.select import SelectConfig, select
    summary = select(["judge/accepted.jsonl"], SelectConfig(min_score=7), "out/select")
"""

from __future__ import annotations

from ..core.stage import StageSpec
from .config import CRITERIA, SelectConfig


def select(*args, **kwargs):
    from .stage import select as run

    return run(*args, **kwargs)


def _run(ctx, config):
    from pathlib import Path

    from ..core.stage import StageResult
    from .stage import select as run

    summary = run(ctx.data(), config, ctx.out)
    return StageResult(outputs=[Path(ctx.out) / "accepted.jsonl"], summary=summary)


SPEC = StageSpec(name="select", config=SelectConfig, run=_run, enabled_by_default=False,
                 help="keep records by judge score, per-criterion pass or human labels (rejected.jsonl says why)")

__all__ = ["SPEC", "SelectConfig", "CRITERIA", "select"]
