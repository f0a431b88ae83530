"""What judging N records will ask of the endpoint: requests, tokens, cost (arithmetic, an upper bound:
every reply uses its whole ``max_tokens`` and every unreadable reply is retried once)."""

from __future__ import annotations

from typing import Any

from .config import JudgeConfig

PROMPT_CHARS = {"self-instruct": 1300, "score": 900, "pairwise": 800}  # the shipped templates, filled
CHARS_PER_TOKEN = {"en": 4.0, "zh": 1.5}
ASSUMED_UNREADABLE = 0.1  # share of replies retried with the stricter prompt


def estimate_judge(records: int, record_chars: float, config: JudgeConfig, lang: str = "en",
                   price_in: float | None = None, price_out: float | None = None) -> dict[str, Any]:
    per_record = 2 if config.rubric == "pairwise" else 1
    first = records * per_record
    requests = int(first * (1 + (ASSUMED_UNREADABLE if config.retry_unparsable else 0)) + 0.999)
    chars = PROMPT_CHARS[config.rubric] + record_chars * (2 if config.rubric == "pairwise" else 1)
    prompt = int(requests * chars / CHARS_PER_TOKEN.get(lang, 4.0))
    completion = requests * config.max_tokens
    cost = None
    if price_in is not None and price_out is not None:
        cost = round((prompt * price_in + completion * price_out) / 1e6, 4)
    return {"records": records, "requests": requests, "prompt_tokens": prompt, "completion_tokens": completion,
            "cost_usd": cost if cost is not None else "n/a (set --price-in / --price-out)",
            "assumes": f"{int(ASSUMED_UNREADABLE * 100)}% of replies retried; replies use max_tokens"}
