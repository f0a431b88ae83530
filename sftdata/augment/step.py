"""The augment stage as a step of ``sftdata run``: its input records and the new ones go on together."""

from __future__ import annotations

from typing import Any

from ..core.stage import StageContext, StageResult
from ..estimate import tokens


def run(ctx: StageContext, config: Any) -> StageResult:
    from .api import augment

    inputs = ctx.data()
    result = augment(config, ctx.llm_config(), inputs, ctx.out, progress=ctx.progress)
    # augment writes only the new records; the next stage gets the input set and them together
    new = ctx.out / "accepted.jsonl"
    return StageResult([*inputs, new] if new.exists() and new.stat().st_size > 0 else inputs, result)


def estimate(config: Any, lang: str, records: int) -> tuple[int, int, int, int]:
    """(requests, prompt tokens, completion tokens, records made: 0, not estimated) for --dry-run."""
    if config.limit is not None:
        records = min(records, config.limit)
    ops = config.resolved_ops()
    per_op = {op: (0 if op.startswith("rule:") else 2 if op == "paraphrase" else 3) for op in ops}
    per_record = sum(per_op.values()) if config.ops_per_record is None else \
        config.ops_per_record * sum(per_op.values()) / max(1, len(ops))
    requests = int(records * per_record * config.rounds)
    return requests, requests * tokens(1500, lang), requests * config.max_tokens, 0
