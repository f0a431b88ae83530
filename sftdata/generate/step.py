"""The generate stage as a step of ``sftdata run``: the seeds in, the accepted tasks out."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..core.stage import StageContext, StageResult, kept
from ..estimate import ASSUMED_ACCEPTANCE, tokens


def run(ctx: StageContext, config: Any) -> StageResult:
    from .api import generate

    config = dataclasses.replace(config, seeds=list(ctx.seeds))
    result = generate(config, ctx.llm_config(), ctx.out, progress=ctx.progress)
    return StageResult(kept([ctx.out / "accepted.jsonl"], "generate"), result)


def estimate(config: Any, lang: str, records: int) -> tuple[int, int, int, int]:
    """(requests, prompt tokens, completion tokens, records made) of a fresh run, for --dry-run."""
    n = config.num_instructions
    made = n * config.instances_per_task
    max_tokens = config.max_tokens or 1024
    prompt_chars = 1200 + 200 * (config.seed_tasks_in_prompt or 6)
    if config.mode == "alpaca":
        requests = math.ceil(n / (config.alpaca_tasks_per_request * ASSUMED_ACCEPTANCE))
        return requests, requests * tokens(prompt_chars, lang), requests * max_tokens, made
    proposals = math.ceil(n / (config.instructions_per_request * ASSUMED_ACCEPTANCE))
    requests = proposals + 2 * n  # + one classification and one instance request per kept instruction
    prompt = proposals * tokens(prompt_chars, lang) + n * tokens(2500, lang) + n * tokens(1500, lang)
    completion = proposals * max_tokens + n * 8 + n * max_tokens
    return requests, prompt, completion, made
