"""The pairs stage as a step of ``sftdata run``: pairs from the run's records. With a finetune stage
before it and no candidate source named, each instruction gets one answer of the base model and one
of the SFT adapter besides the records' own, so DPO learns from the SFT adapter's own mistakes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..core.errors import DataError
from ..core.stage import StageContext, StageResult


def run(ctx: StageContext, config: Any) -> StageResult:
    from ..judge import JudgeConfig, judge_llm_config
    from .stage import pairs_from_files

    finetuned = ctx.output_of("finetune")
    if finetuned and not (config.candidates or config.candidate_model or config.candidate_adapter):
        config = dataclasses.replace(config, candidates=1, candidate_adapter=[str(finetuned[0])])
    llm_config = ctx.llm_config()
    # the run's judge section when it has one (its own endpoint and rubric settings), else the run's LLM
    judge_config = ctx.config_of("judge") or JudgeConfig()
    judge_llm = judge_llm_config(judge_config, llm_config) if config.rank_by in ("judge", "pairwise") else None
    summary = pairs_from_files(ctx.data(), config, ctx.out, llm_config=llm_config, judge_config=judge_config,
                               judge_llm=judge_llm)
    if not summary["pairs"]:
        raise DataError(ctx.out / "rejected.jsonl", None, "the pairs stage made no pair; see its rejected.jsonl for why")
    return StageResult([ctx.out], summary)


def pairs_split(pairs_dir: Path, split: str) -> Path | None:
    """The first non-empty ``<split>.jsonl`` of the pairs stage's export (any preference format)."""
    for path in sorted((Path(pairs_dir) / "export").glob(f"*/{split}.jsonl")):
        if path.stat().st_size > 0:
            return path
    return None
