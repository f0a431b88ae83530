"""A rough estimate of what a pipeline run will ask of the LLM: requests, tokens, cost.

It is arithmetic on the config, not a measurement: it assumes half of the proposed instructions are
kept (real acceptance ranges from 20% to 80% with model and threshold), prompts of the shipped
templates' size, and replies using their whole ``max_tokens`` (so tokens and cost are upper-ish).
"""

from __future__ import annotations

import math
from typing import Any

ASSUMED_ACCEPTANCE = 0.5
CHARS_PER_TOKEN = {"en": 4.0, "zh": 1.5}


def _tokens(chars: float, lang: str) -> int:
    return int(chars / CHARS_PER_TOKEN.get(lang, 4.0))


def _generate(section: Any, lang: str) -> tuple[int, int, int]:
    n = section.num_instructions
    max_tokens = section.max_tokens or 1024
    prompt_chars = 1200 + 200 * (section.seed_tasks_in_prompt or 6)
    if section.mode == "alpaca":
        requests = math.ceil(n / (section.alpaca_tasks_per_request * ASSUMED_ACCEPTANCE))
        return requests, requests * _tokens(prompt_chars, lang), requests * max_tokens
    proposals = math.ceil(n / (section.instructions_per_request * ASSUMED_ACCEPTANCE))
    requests = proposals + 2 * n  # + one classification and one instance request per kept instruction
    prompt = proposals * _tokens(prompt_chars, lang) + n * _tokens(2500, lang) + n * _tokens(1500, lang)
    completion = proposals * max_tokens + n * 8 + n * max_tokens
    return requests, prompt, completion


def _augment(section: Any, records: int, lang: str) -> tuple[int, int, int]:
    if section.limit is not None:
        records = min(records, section.limit)
    ops = section.resolved_ops()
    per_op = {op: (0 if op.startswith("rule:") else 2 if op == "paraphrase" else 3) for op in ops}
    per_record = sum(per_op.values()) if section.ops_per_record is None else \
        section.ops_per_record * sum(per_op.values()) / max(1, len(ops))
    requests = int(records * per_record * section.rounds)
    return requests, requests * _tokens(1500, lang), requests * section.max_tokens


def estimate(pipeline: Any) -> dict[str, Any]:
    lang = pipeline.lang or "en"
    requests = prompt = completion = 0
    generate = pipeline.stages.get("generate")
    records = 0
    if generate is not None:
        r, p, c = _generate(generate, lang)
        requests, prompt, completion = requests + r, prompt + p, completion + c
        records = generate.num_instructions * generate.instances_per_task
    augment = pipeline.stages.get("augment")
    if augment is not None:
        r, p, c = _augment(augment, records or 200, lang)
        requests, prompt, completion = requests + r, prompt + p, completion + c
    judge = pipeline.stages.get("judge")
    if judge is not None:  # its own endpoint may price differently; counted here as the run's llm
        from .judge.estimate import estimate_judge

        guess = estimate_judge(records or 200, 600, judge, lang)
        requests, prompt = requests + guess["requests"], prompt + guess["prompt_tokens"]
        completion += guess["completion_tokens"]
    llm = pipeline.llm
    cost = None
    if llm.price_in is not None and llm.price_out is not None:
        cost = round((prompt * llm.price_in + completion * llm.price_out) / 1e6, 4)
    return {"backend": "openai-compatible" if llm.base_url else "local (embedded model, no cost)",
            "requests": requests, "prompt_tokens": prompt, "completion_tokens": completion,
            "cost_usd": cost if cost is not None else "n/a (set llm.price_in / llm.price_out)",
            "assumes": f"{int(ASSUMED_ACCEPTANCE * 100)}% of proposed instructions kept; replies use max_tokens"}
