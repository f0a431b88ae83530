"""A rough estimate of what a pipeline run will ask of the LLM: requests, tokens, cost.

It is arithmetic on the config, not a measurement: it assumes half of the proposed instructions are
kept (real acceptance ranges from 20% to 80% with model and threshold), prompts of the shipped
templates' size, and replies using their whole ``max_tokens`` (so tokens and cost are upper-ish).
"""

from __future__ import annotations

from typing import Any

ASSUMED_ACCEPTANCE = 0.5
CHARS_PER_TOKEN = {"en": 4.0, "zh": 1.5}
ASSUMED_INPUT_RECORDS = 200  # a stage's input when no earlier stage says how many records it makes


def tokens(chars: float, lang: str) -> int:
    """Tokens of ``chars`` characters of ``lang`` text (a rough, tokenizer-free guess)."""
    return int(chars / CHARS_PER_TOKEN.get(lang, 4.0))


def estimate(pipeline: Any) -> dict[str, Any]:
    """Requests, tokens and cost of the stages that call the LLM (each stage's ``StageSpec.estimate``)."""
    from . import registry

    lang = pipeline.lang or "en"
    requests = prompt = completion = records = 0
    for spec in registry.specs():
        section = pipeline.stages.get(spec.name)
        if section is None or spec.estimate is None:
            continue
        r, p, c, out = spec.estimate(section, lang, records or ASSUMED_INPUT_RECORDS)
        requests, prompt, completion = requests + r, prompt + p, completion + c
        records = out or records
    llm = pipeline.llm
    cost = None
    if llm.price_in is not None and llm.price_out is not None:
        cost = round((prompt * llm.price_in + completion * llm.price_out) / 1e6, 4)
    return {"backend": "openai-compatible" if llm.base_urls else "local (embedded model, no cost)",
            "requests": requests, "prompt_tokens": prompt, "completion_tokens": completion,
            "cost_usd": cost if cost is not None else "n/a (set llm.price_in / llm.price_out)",
            "assumes": f"{int(ASSUMED_ACCEPTANCE * 100)}% of proposed instructions kept; replies use max_tokens"}
