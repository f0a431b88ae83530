"""The report's views of a dataset and its run: pure functions over Records and run files.

Lengths are words for English and characters for Chinese (``sftdata.stats.text_length``), as in
Table 1. Reading of run files (stats.json, rejected.jsonl, metrics.json) is defensive: what is not
recognized is left out of the report, never guessed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..core import stats as dataset_stats
from ..core.errors import DataError
from ..core.records import Record, iter_json_lines
from ..text.cjk import CJK_CHAR, HAN_CHAR

SEED_KEYS = ("seeds", "seed_tasks", "seed_file", "seeds_path", "seed_path")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, None, f"unreadable JSON: {exc}") from None


def write_json(path: Path, data: Any) -> None:
    """Strict JSON (NaN / infinity as null), UTF-8, stable key order as built."""
    from ..eval.stage import json_safe

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(json_safe(data), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------- seeds and ROUGE-L (Figure 3)

def walk(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield prefix, value
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from walk(sub, prefix + (str(key),))
    elif isinstance(value, list):
        for number, sub in enumerate(value):
            yield from walk(sub, prefix + (str(number),))


def seed_files_from_config(run: Path, config: dict[str, Any]) -> list[Path]:
    """Seed files a run's config.json names (keys like ``seeds`` / ``seed_tasks``, any depth)."""
    from ..core.paths import seeds_dir

    found: list[Path] = []
    for keys, value in walk(config):
        named = [k for k in keys if not k.isdigit()]
        if not named or named[-1] not in SEED_KEYS or not isinstance(value, str):
            continue
        for base in (run, run.parent, Path.cwd(), seeds_dir()):
            candidate = base / value
            if candidate.is_file():
                found.append(candidate)
                break
    return found


def _instructions(records: Sequence[Record]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for rec in records:
        out.setdefault(rec.instruction, rec.lang)
    return out


def rouge_vs_seeds(records: Sequence[Record], seeds: Sequence[Record] | None) -> dict[str, Any]:
    """Max ROUGE-L F of each distinct non-seed instruction against the seed instructions.

    Uses the filter's RougeIndex with threshold 0: every seed sharing a token with the instruction is
    scored (bit-parallel LCS), and the index reports the exact maximum for any instruction above its
    threshold; one sharing no token with any seed scores 0. Tokens: CJK-aware where there is CJK.
    """
    from ..filter.rouge import RougeIndex

    seed_texts = sorted(_instructions(seeds or []))
    seed_set = set(seed_texts)
    generated = [i for i in _instructions([r for r in records if r.source != "seed"]) if i not in seed_set]
    if seed_texts:
        index = RougeIndex(tokenizer="auto", threshold=0.0)
        index.add_many(seed_texts)
        return {"basis": "seeds", "seeds": len(seed_texts), "scores": [index.check(t).score for t in generated]}
    by_text: dict[str, float] = {}
    for rec in records:
        value = rec.meta.get("rouge_max") if isinstance(rec.meta, dict) else None
        if isinstance(value, (int, float)) and rec.source != "seed":
            by_text[rec.instruction] = float(value)
    return {"basis": "meta.rouge_max" if by_text else "none", "seeds": 0, "scores": list(by_text.values())}


# ---------------------------------------------------------------- dataset views

_LEAD_SKIP_EN = {"please", "kindly", "now", "then", "also", "so"}
_LEAD_STRIP_ZH = ("请你", "请您", "请", "麻烦你", "帮我")
_MEASURE_ZH = set("一二两三四五六七八九十几个首篇段份句条封些")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_HAN = HAN_CHAR  # the leading "word" of a Chinese instruction is made of Han characters


def _is_cjk_text(text: str, lang: str | None) -> bool:
    if lang is not None:
        return dataset_stats.is_cjk_lang(lang)
    return len(CJK_CHAR.findall(text)) * 3 >= len(text.replace(" ", "")) > 0


def leading_word(instruction: str, lang: str | None) -> str | None:
    """English: the first word, lowercased, after a politeness word ("Please rewrite" -> rewrite).

    Chinese: the first two Han characters after a polite "请" ("请翻译下面的句子" -> 翻译), or one
    when a numeral or measure word follows a one-character verb ("写一首诗" -> 写); a sentence opening
    with the 把 / 将 construction, whose verb comes after the object, counts as "把…" / "将…".
    """
    text = instruction.strip()
    if _is_cjk_text(text, lang):
        for prefix in _LEAD_STRIP_ZH:
            if text.startswith(prefix) and len(text) > len(prefix) + 1:
                text = text[len(prefix):]
                break
        chars = "".join(_HAN.findall(text[:8]))[:2]
        if chars[:1] in ("把", "将"):
            return chars[0] + "…"
        if len(chars) == 2 and chars[1] in _MEASURE_ZH:
            return chars[0]
        return chars or None
    words = [w.lower().strip("'-") for w in _WORD.findall(text[:200])]
    words = [w for w in words if w]
    while len(words) > 1 and words[0] in _LEAD_SKIP_EN:
        words = words[1:]
    return words[0] if words else None


def leading_words(records: Sequence[Record], top: int = 20) -> dict[str, list[tuple[str, int]]]:
    """Most frequent leading words per language group ("en"-like or "zh"-like), over distinct instructions."""
    counts: dict[str, Counter[str]] = {}
    for text, lang in _instructions(records).items():
        word = leading_word(text, lang)
        if word:
            group = lang or ("zh" if _is_cjk_text(text, None) else "en")
            counts.setdefault(group, Counter())[word] += 1
    return {group: c.most_common(top) for group, c in sorted(counts.items())}


def lengths(records: Sequence[Record]) -> dict[str, dict[str, list[int]]]:
    """Per language: instruction (distinct), non-empty input and output lengths (words / CJK characters)."""
    out: dict[str, dict[str, list[int]]] = {}
    for text, lang in _instructions(records).items():
        out.setdefault(lang or "unknown", {"instruction": [], "input": [], "output": []})["instruction"].append(
            dataset_stats.text_length(text, lang))
    for rec in records:
        bucket = out.setdefault(rec.lang or "unknown", {"instruction": [], "input": [], "output": []})
        if rec.input.strip():
            bucket["input"].append(dataset_stats.text_length(rec.input, rec.lang))
        bucket["output"].append(dataset_stats.text_length(rec.output, rec.lang))
    return out


def lineage(records: Sequence[Record]) -> dict[str, Any]:
    """Counts by source (seed, self-instruct, evol:<op> ...) and evolution depth along parent_id."""
    by_id = {rec.id: rec for rec in records}
    depths: Counter[int] = Counter()
    for rec in records:
        depth, current, seen = 0, rec, set()
        while current.parent_id and current.parent_id not in seen:
            seen.add(current.parent_id)
            depth += 1
            parent = by_id.get(current.parent_id)
            if parent is None:
                break
            current = parent
        depths[depth] += 1
    sources = Counter(rec.source or "unknown" for rec in records)
    return {"sources": dict(sources.most_common()), "with_parent": sum(1 for r in records if r.parent_id),
            "depth": {str(k): v for k, v in sorted(depths.items())}}


def rejections(files: Sequence[tuple[str, Path]]) -> dict[str, dict[str, int]]:
    """Rejected records per stage and reason, from every rejected.jsonl found."""
    table: dict[str, Counter[str]] = {}
    for hint, path in files:
        if path.stat().st_size == 0:  # a stage that rejected nothing
            continue
        for _number, row in iter_json_lines(path):
            row = row if isinstance(row, dict) else {}
            stage = str(row.get("stage") or hint or "unknown")
            count = row.get("count", 1)  # a rejection repeated in one run is written once, with its count
            count = count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1
            table.setdefault(stage, Counter())[str(row.get("reason") or "unknown")] += count
    return {stage: dict(c.most_common()) for stage, c in table.items()}


_USAGE_KEYS = ("prompt_tokens", "completion_tokens")


def usage(files: Sequence[tuple[str, Path]]) -> dict[str, dict[str, Any]]:
    """Token usage and cost per stage: the shallowest objects in each stats.json that carry token counts."""
    out: dict[str, dict[str, Any]] = {}
    for stage, path in files:
        data = read_json(path)
        hits = [(keys, v) for keys, v in walk(data) if isinstance(v, dict) and any(k in v for k in _USAGE_KEYS)]
        if not hits:
            continue
        depth = min(len(keys) for keys, _ in hits)
        total: dict[str, Any] = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "requests": 0}
        for keys, value in hits:
            if len(keys) != depth:
                continue
            for key, src in (("prompt_tokens", "prompt_tokens"), ("completion_tokens", "completion_tokens"),
                             ("cost_usd", "cost_usd"), ("requests", "sent")):
                number = value.get(src, value.get("cost") if key == "cost_usd" else None)
                if isinstance(number, (int, float)) and not isinstance(number, bool):
                    total[key] += number
            if isinstance(value.get("model"), str):
                total["model"] = value["model"]
        out[stage] = total
    return out




# ---------------------------------------------------------------- fine-tuning curves

_STEP_KEYS = ("step", "global_step", "steps", "epoch")
_PREFIXES = {"log_history", "history", "curves", "metrics", "logs", "loss_curves"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _series_name(keys: tuple[str, ...], loss_key: str | None = None) -> str:
    parts = [k for k in keys if not k.isdigit() and k not in _PREFIXES]
    if loss_key and (loss_key != "loss" or not parts):
        parts.append(loss_key)
    return ".".join(parts) or "loss"


def loss_curves(metrics: Any) -> dict[str, list[tuple[float, float]]]:
    """Loss series in a fine-tune ``metrics.json``, whatever its exact shape.

    Recognized anywhere in the document: a list of log entries (``{"step": 10, "loss": 2.3}``,
    ``{"epoch": 1, "eval_loss": 2.1}``, transformers' ``log_history``); a list of numbers under a key
    containing "loss" (x = 1, 2, ...); a list of ``[step, loss]`` pairs under such a key.
    """
    curves: dict[str, list[tuple[float, float]]] = {}
    for keys, value in walk(metrics):
        if not isinstance(value, list) or not value:
            continue
        named_loss = bool(keys) and "loss" in keys[-1].lower()
        if all(isinstance(v, dict) for v in value):
            for index, entry in enumerate(value, start=1):
                x = next((entry[k] for k in _STEP_KEYS if _number(entry.get(k))), index)
                for key, y in entry.items():
                    if "loss" in key.lower() and _number(y):
                        curves.setdefault(_series_name(keys, key), []).append((float(x), float(y)))
        elif named_loss and all(_number(v) for v in value):
            curves[_series_name(keys)] = [(float(i), float(v)) for i, v in enumerate(value, start=1)]
        elif named_loss and all(isinstance(v, list) and len(v) == 2 and all(map(_number, v)) for v in value):
            curves[_series_name(keys)] = [(float(x), float(y)) for x, y in value]
    return {name: sorted(points) for name, points in curves.items()}
