"""An estimate of what a pipeline run will ask of the LLM: requests, tokens, cost, and time.

It is arithmetic on the config (each stage's ``StageSpec.estimate``), not a measurement, and not a
bound: how many requests Self-Instruct needs depends on how many proposed instructions the filters
keep, which ranges from under 5% (the embedded 135M model) to about 80% (a strong model). So the
estimate is given at two acceptance rates: 50% (``requests``, the figure for a capable model) and
15% (``requests_at_low_acceptance``, a weak one). Prompts are sized as the shipped templates,
replies as their whole ``max_tokens``. Time is requests divided by a *measured* request rate of the
same backend and model: the one the last finished LLM stage (or ``sftdata llm bench``) recorded in
``$SFTDATA_HOME/speed.json``.
"""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

ASSUMED_ACCEPTANCE = 0.5
LOW_ACCEPTANCE = 0.15
CHARS_PER_TOKEN = {"en": 4.0, "zh": 1.5}
ASSUMED_INPUT_RECORDS = 200  # a stage's input when no earlier stage says how many records it makes
SPEED_FILE = "speed.json"


def tokens(chars: float, lang: str) -> int:
    """Tokens of ``chars`` characters of ``lang`` text (a rough, tokenizer-free guess)."""
    return int(chars / CHARS_PER_TOKEN.get(lang, 4.0))


def _totals(pipeline: Any, lang: str, acceptance: float) -> tuple[int, int, int, dict[str, dict[str, Any]]]:
    """Requests and tokens over the stages that call the LLM, and each stage's own figures (with the
    detail its estimate gives, if any); ``acceptance`` / ``stages`` go to the estimates that take them."""
    from . import registry

    requests = prompt = completion = 0
    records = _seed_records(pipeline)  # what the first stage reads, until a stage says what it makes
    by_stage: dict[str, dict[str, Any]] = {}
    for spec in registry.specs():
        section = pipeline.stages.get(spec.name)
        if section is None or spec.estimate is None:
            continue
        parameters = inspect.signature(spec.estimate).parameters
        extra: dict[str, Any] = {"acceptance": acceptance} if "acceptance" in parameters else {}
        if "stages" in parameters:
            extra["stages"] = pipeline.stages
        r, p, c, out, *detail = spec.estimate(section, lang, records or ASSUMED_INPUT_RECORDS, **extra)
        requests, prompt, completion = requests + r, prompt + p, completion + c
        by_stage[spec.name] = {"requests": r, "prompt_tokens": p, "completion_tokens": c, **(detail[0] if detail else {})}
        records = out or records
    return requests, prompt, completion, by_stage


def _seed_records(pipeline: Any) -> int:
    """Records in the config's seed files (JSON lines; 0 when unreadable or the packaged seeds)."""
    from pathlib import Path

    count = 0
    for path in pipeline.seeds:
        try:
            with Path(path).open(encoding="utf-8") as lines:
                count += sum(1 for line in lines if line.strip())
        except (OSError, UnicodeDecodeError):
            return 0
    return count


# ---------------------------------------------------------------- measured speed

def speed_key(backend: str, model: str) -> str:
    return f"{backend}:{model}"


def record_speed(backend: str, model: str, requests: int, seconds: float, source: str) -> None:
    """Remember a measured request rate (a finished LLM stage, ``llm bench``) for later estimates."""
    if requests < 4 or seconds <= 0:  # too few to say anything
        return
    from .core.paths import home

    path = home() / SPEED_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data[speed_key(backend, model)] = {"requests_per_s": round(requests / seconds, 4), "requests": requests,
                                       "seconds": round(seconds, 1), "source": source,
                                       "measured": time.strftime("%Y-%m-%d %H:%M")}
    tmp = path.with_name(SPEED_FILE + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def measured_speed(backend: str, model: str) -> dict[str, Any] | None:
    from .core.paths import home

    try:
        data = json.loads((home() / SPEED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = data.get(speed_key(backend, model)) if isinstance(data, dict) else None
    return found if isinstance(found, dict) and found.get("requests_per_s") else None


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" if seconds >= 90 \
        else f"{seconds:.0f} s"


def _time(pipeline: Any, requests: int, low: int) -> str:
    llm = pipeline.llm
    backend = "openai" if llm.base_urls else "local"
    model = llm.model or ""
    speed = measured_speed(backend, model)
    if speed is None:
        return ("unknown: no measured speed for this backend and model yet (`sftdata llm bench` measures it; "
                "every finished generate or augment run records it)")
    rate = speed["requests_per_s"]
    return (f"{_duration(requests / rate)} (up to {_duration(low / rate)} at low acceptance), at the "
            f"{rate:g} requests/s measured by {speed['source']} on {speed['measured']}")


def estimate(pipeline: Any) -> dict[str, Any]:
    lang = pipeline.lang or "en"
    requests, prompt, completion, by_stage = _totals(pipeline, lang, ASSUMED_ACCEPTANCE)
    low, low_prompt, low_completion, _ = _totals(pipeline, lang, LOW_ACCEPTANCE)
    llm = pipeline.llm
    result: dict[str, Any] = {
        "backend": "openai-compatible" if llm.base_urls else "local (embedded model, no cost)",
        "requests": requests, "prompt_tokens": prompt, "completion_tokens": completion,
        "requests_at_low_acceptance": low,
        "time": _time(pipeline, requests, low),
        "stages": by_stage,
    }
    if llm.base_urls:
        if llm.price_in is not None and llm.price_out is not None:
            result["cost_usd"] = round((prompt * llm.price_in + completion * llm.price_out) / 1e6, 4)
            result["cost_usd_at_low_acceptance"] = round(
                (low_prompt * llm.price_in + low_completion * llm.price_out) / 1e6, 4)
        else:
            result["cost_usd"] = "n/a (set llm.price_in / llm.price_out)"
    result["error"] = (f"an estimate, not a bound: it assumes {ASSUMED_ACCEPTANCE:.0%} of proposed instructions "
                       f"are kept ({LOW_ACCEPTANCE:.0%} for the low figure) and replies of max_tokens; a run keeping "
                       "fewer sends more requests (the embedded model keeps under 10% on some runs)")
    return result
