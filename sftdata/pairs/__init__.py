"""The pairs stage: preference pairs (prompt, chosen, rejected, margin, provenance) from ranked candidates.

    config.py   PairsConfig (setting() fields)
    build.py    ranked candidates -> pairs; ties and low margins -> rejected rows with the reason
    stage.py    candidates (records, LLM samples, other models, adapters), ranking (judge scores, pairwise,
                reward model, meta.judge, human feedback.jsonl), pairs.jsonl + rejected.jsonl + exports

Importing this package stays cheap (no torch); the run function imports what it needs.
"""

from __future__ import annotations

from ..core.stage import StageSpec
from .config import PairsConfig


def _run(ctx, config):
    """The stage under a registry-driven ``sftdata run``: the run's records; with a finetune stage before
    it and no candidate source named, one answer of the base and one of the SFT adapter per instruction."""
    import dataclasses
    from pathlib import Path

    from ..core.stage import StageResult
    from .stage import pairs_from_files

    finetuned = ctx.output_of("finetune")
    if finetuned and not (config.candidates or config.candidate_model or config.candidate_adapter):
        config = dataclasses.replace(config, candidates=1, candidate_adapter=[str(finetuned[0])])
    llm_config = ctx.llm_config()
    judge_config, judge_llm = _judge(ctx, llm_config)
    summary = pairs_from_files(ctx.data(), config, ctx.out, llm_config=llm_config, judge_config=judge_config,
                               judge_llm=judge_llm)
    return StageResult(outputs=[Path(ctx.out)], summary=summary)


def _judge(ctx, llm_config):
    """The run's judge section when it has one (its own endpoint), else the run's LLM as the judge."""
    from ..judge import JudgeConfig, judge_llm_config

    section = getattr(ctx, "config_of", lambda name: None)("judge")
    judge_config = section if isinstance(section, JudgeConfig) else JudgeConfig()
    return judge_config, judge_llm_config(judge_config, llm_config)


SPEC = StageSpec(name="pairs", config=PairsConfig, run=_run, uses_llm=True, produces_data=False,
                 enabled_by_default=False,
                 help="preference pairs: candidates per instruction ranked by the judge, a reward model or people",
                 summary_keys=("prompts", "pairs", "rejected", "candidates_added"))

__all__ = ["SPEC", "PairsConfig"]
