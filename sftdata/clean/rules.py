"""The clean stage's removal rules: each looks at one record and returns a detail dict when it fires.

They are heuristics tuned to keep good data: each has a list of texts it must leave alone in
tests/unit/test_clean.py (code, lists, short labels, translations of refusals, stories about robots).
"""

from __future__ import annotations

import math
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Any

from ..core.records import Record
from ..core.stats import is_cjk_lang
from ..text.cjk import CJK_CLASS, has_cjk
from ..text.count import quick_length
from ..text.refusals import refused_answer
from .text import CODE_LINE

# ---------------------------------------------------------------- refusals and AI disclaimers

def refusal(rec: Record) -> dict[str, Any] | None:
    """A reply that is a refusal or opens with an AI disclaimer (clean's strength: text.refusals)."""
    return refused_answer(rec.output, f"{rec.instruction}\n{rec.input}")


# ---------------------------------------------------------------- truncation

_TRUNCATED_FLAGS = ("finish_reason", "output_finish_reason", "stop_reason")
_LIST_OR_TABLE = re.compile(r"^\s*(?:[-*•+]|\d+[.)、]|[a-zA-Z][.)]|#|\||>|[（(]?[一二三四五六七八九十\d]+[)）、.])")
_SENTENCE_END = re.compile(r"[.!?。！？…]")
# what a reply cannot end on: a comma, a colon announcing what never came, a connective. Not 的 / 了 /
# 在 / 是: Chinese sentences end on those ("…熬过来的").
_DANGLING = re.compile(r"(?:[,，、(（\-–—:：]|\b(?:and|or|but|the|a|an|of|to|in|on|with|for|that|which|because|"
                       r"is|are|was|were)|(?:和|与|或|及|把|被|而且|但是|因为|所以|并且|以及|或者))$", re.IGNORECASE)
_FIELD = re.compile(r"^[^:：。.!?！？]{1,16}[:：]")  # "经验要求：…", "Salary: …": a field, not a sentence
_URL_END = re.compile(r"(?:https?://|www\.|\S+@\S+\.\S+$|\S+\.(?:com|org|net|io|cn)\S*$)\S*$", re.IGNORECASE)
_NOT_A_WORD = re.compile(r"[#@/\\_=+<>|]")


def _meta_truncated(meta: dict[str, Any]) -> str | None:
    if meta.get("truncated") is True:
        return "meta truncated=true"
    for key in _TRUNCATED_FLAGS:
        if meta.get(key) == "length":
            return f"meta {key}=length"
    reasons = meta.get("finish_reasons")
    if isinstance(reasons, dict) and "length" in reasons.values():
        return "meta finish_reasons has length"
    return None


def _unbalanced_json(text: str) -> bool:
    """A reply that is a JSON object or array whose brackets never close."""
    body = text.strip()
    if not body.startswith(("{", "[")):
        return False
    depth, in_string, escaped = 0, False, False
    for ch in body:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
    return depth > 0 or in_string


def truncated(rec: Record) -> dict[str, Any] | None:
    """Cut off by the length limit: the generation said so, a code fence or a JSON reply never closes,
    or prose ends mid-sentence.

    Mid-sentence needs a reply of 20+ words (25+ CJK characters) that uses sentence punctuation
    elsewhere, ending outside code on a comma, a colon or a connective ("and", "the", "和"; list items
    too), or on a letter at the end of a long prose line (10+ words, 15+ CJK characters) that is not
    a table row, field, heading, URL, hashtag or line of code, nor a list item unless that item ended
    a sentence and stopped inside the next. A reply ending on U+FFFD was cut inside a character.
    Short labels, lists, poems and code are left alone; a cut at a sentence boundary cannot be seen
    (the meta flag catches those).
    """
    flag = _meta_truncated(rec.meta) if isinstance(rec.meta, dict) else None
    if flag:
        return {"signal": flag}
    text = rec.output.rstrip()
    if text.count("```") % 2 == 1:
        return {"signal": "unclosed code fence"}
    if _unbalanced_json(text):
        return {"signal": "unclosed JSON"}
    if text.endswith("\ufffd"):  # a multi-byte character cut in half: decoding stopped mid-token
        return {"signal": "ends inside a character"}
    last = text[text.rfind("\n") + 1:].strip()
    if not last or last.startswith("```") or CODE_LINE.match(last):
        return None
    dangling = bool(_DANGLING.search(last[-12:]))
    if not (dangling or unicodedata.category(last[-1]).startswith("L")):
        return None  # ends on punctuation, a digit, a symbol: not cut mid-word or mid-clause
    cjk = has_cjk(last)
    # a Chinese reply may be one long sentence of clauses: its commas show it uses punctuation too
    punctuated = _SENTENCE_END.search(text[:-1]) or (cjk and re.search("[，；]", text[:-1]))
    if quick_length(text) < (25 if cjk else 20) or not punctuated:
        return None  # short, or no sentence punctuation anywhere: a style without it (titles, notes)
    field = _FIELD.match(last) and not _SENTENCE_END.search(last)
    if _URL_END.search(last) or _NOT_A_WORD.search(last.split()[-1]) or last.startswith("|") or field:
        return None  # a link, a #hashtag or @mention, a path, a table row, a "label: value" field
    if dangling and not last.startswith("#"):
        return {"signal": "ends on a connective", "tail": last[-40:]}
    if quick_length(last) < (15 if cjk else 10):
        return None
    if _LIST_OR_TABLE.match(last):
        # an item may be a title ("3. A walk by the sea"), but one that finished a sentence and
        # stopped inside the next was cut
        body = last[_LIST_OR_TABLE.match(last).end():]
        if quick_length(last) < (20 if cjk else 12) or not _SENTENCE_END.search(body[:-1]):
            return None
    return {"signal": "ends mid-sentence", "tail": last[-40:]}


# ---------------------------------------------------------------- repeats the instruction

_LABEL = re.compile(r"^\s*(?:instruction|question|task|prompt|指令|问题|任务|题目)\s*[:：]\s*", re.IGNORECASE)
_NON_WORD = re.compile(r"[\W_]+")
MIN_INSTRUCTION_CHARS = 8  # "Hello" -> "Hello!" is a greeting, not an echo


def _squash(text: str) -> str:
    return _NON_WORD.sub("", text.casefold())


def repeats_instruction(rec: Record, threshold: float = 0.9) -> dict[str, Any] | None:
    """The reply is the instruction again (optionally labelled, or with the input), not an answer."""
    if len(rec.output) > 3 * (len(rec.instruction) + len(rec.input)) + 40:
        return None  # far longer than the prompt: whatever it is, not a copy of it
    instruction = _squash(rec.instruction)
    if len(instruction) < MIN_INSTRUCTION_CHARS:
        return None
    output = _squash(_LABEL.sub("", rec.output))
    if not output:
        return None
    for target in dict.fromkeys((instruction, _squash(rec.instruction + rec.input))):  # one when no input
        if output == target:
            return {"similarity": 1.0}
        if 0.5 * len(target) <= len(output) <= 1.5 * len(target):
            matcher = SequenceMatcher(None, target, output, autojunk=False)
            if matcher.quick_ratio() < threshold:  # an upper bound on ratio(), and far cheaper
                continue
            ratio = matcher.ratio()
            if ratio >= threshold:
                return {"similarity": round(ratio, 3)}
    return None


# ---------------------------------------------------------------- degenerate repetition

_TOKEN = re.compile(f"[{CJK_CLASS}]|[^\\W_{CJK_CLASS}]+")
_ASKS_REPETITION = re.compile(r"repeat|repetition|\d+\s*times|重复|复读|\d+\s*遍|[一二三四五六七八九十百]+遍", re.IGNORECASE)
_LIST_MARKER = re.compile(r"^\s*(?:[-*•+]|\d+[.)、]|[a-zA-Z][.)])\s*")
MAX_UNIT = 15
# "!!!!!!!!!!", "？？？？！！！！！！": a model stuck on punctuation. Dots, dashes, = and _ are left alone:
# ellipses, rules, underlines and fill-in blanks are made of them.
_PUNCT_RUN = re.compile(r"[!?！？。，,;；]{10,}")


def tokens(text: str) -> list[str]:
    """Words, and each CJK character on its own (Chinese has no spaces between words)."""
    return _TOKEN.findall(text.casefold())


def _longest_tandem(toks: Sequence[str]) -> tuple[int, int, int, int]:
    """(unit length, repeats, tokens covered, start) of the longest run of one unit repeated back to
    back at least 4 times over 12+ tokens (shorter ones are not looked for); zeros when none.
    A unit of numbers only is not counted: a zero matrix or "1 1 1" is data, not a loop.

    Row u-1 of ``same`` says whether token i equals token i+u; a run of r such positions is the unit
    repeated (r + u) / u times. Rows are scored with numpy, and only rows with enough equal positions
    for such a run at all, since this runs on every record.
    """
    n = len(toks)
    units = min(MAX_UNIT, n // 4)
    if units < 1 or n < 12:
        return (0, 0, 0, 0)
    import numpy as np  # here, not at the top: every CLI command imports this module

    ids = np.fromiter(map(hash, toks), dtype=np.int64, count=n)  # a 64-bit string hash: equal is equal
    padded = np.concatenate((ids, np.full(units, -1)))
    shifts = np.arange(1, units + 1)
    same = padded[None, :n] == padded[np.arange(n)[None, :] + shifts[:, None]]
    needed = np.maximum(3 * shifts, 12 - shifts)
    rows = np.flatnonzero(same.sum(axis=1) >= needed)
    best = (0, 0, 0, 0)
    if not len(rows):
        return best
    positions = np.arange(n)
    last_break = np.maximum.accumulate(np.where(same[rows], -1, positions), axis=1)
    runs = positions - last_break  # length of the run of equal positions ending at each position
    for k, row in enumerate(rows):
        unit, end = int(shifts[row]), int(runs[k].argmax())
        run = int(runs[k, end])
        start = end - run + 1
        if run < needed[row] or run + unit <= best[2] or all(t.isdigit() for t in toks[start: start + unit]):
            continue
        best = (unit, (run + unit) // unit, run + unit, start)
    return best


def repetition(rec: Record) -> dict[str, Any] | None:
    """Degenerate repetition (small models loop): one unit repeated back to back, one line over and
    over, too few distinct trigrams, or a run of ten or more ! ? or commas. A task that asks for repetition is left alone."""
    if _ASKS_REPETITION.search(rec.instruction) or _ASKS_REPETITION.search(rec.input):
        return None
    run = _PUNCT_RUN.search(rec.output)
    if run:
        return {"kind": "punctuation run", "run": run.group(0)[:20]}
    toks = tokens(rec.output)
    n = len(toks)
    unit, repeats, span, start = _longest_tandem(toks)
    if repeats >= 4 and span >= max(12, 0.3 * n) or repeats >= 8 and span >= 24:
        return {"kind": "loop", "unit": " ".join(toks[start: start + unit]), "repeats": repeats, "tokens": span}
    lines = [_LIST_MARKER.sub("", line).strip().casefold() for line in rec.output.split("\n") if line.strip()]
    if len(lines) >= 5:
        line, count = Counter(lines).most_common(1)[0]
        if count >= 3 and count >= 0.5 * len(lines):
            return {"kind": "repeated line", "line": line[:80], "count": count, "lines": len(lines)}
    if n >= 60:
        trigrams = list(zip(toks, toks[1:], toks[2:]))
        distinct = len(set(trigrams)) / len(trigrams)
        if distinct < 0.3:
            return {"kind": "low diversity", "distinct_trigrams": round(distinct, 3)}
    return None


# ---------------------------------------------------------------- length outliers

def _unit(rec: Record) -> str:
    cjk = is_cjk_lang(rec.lang) if rec.lang else has_cjk(rec.output[:200])
    return "chars" if cjk else "words"


MIN_LOG_SCALE = 0.4  # spread floor: at z 3.5 nothing within 4x of the median length is an outlier


def _group_lengths(records: Sequence[Record]) -> dict[str, dict[int, int]]:
    """Output lengths per group (length unit, classification or not): index -> length."""
    groups: dict[str, dict[int, int]] = {}
    for index, rec in enumerate(records):
        unit = _unit(rec)
        length = quick_length(rec.output, cjk=unit == "chars")
        groups.setdefault(f"{unit}/{'cls' if rec.is_classification else 'gen'}", {})[index] = length
    return groups


def length_outliers(records: Sequence[Record], z_threshold: float, min_group: int = 10, short: bool = False
                    ) -> tuple[dict[int, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Robust z-scores of log output length, per group (length unit, classification or not).

    Lengths are skewed, so the score is on log(1 + length): z = (x - median) / (MAD / 0.6745). The
    spread is at least MIN_LOG_SCALE: where most lengths are equal (one-word labels) the MAD is 0 and
    a two-word label would otherwise be "infinitely" far out. Only long outliers are flagged unless
    ``short``: short replies (a rewrite, a label, "Paris.") are mostly right, and empty ones and
    refusals have their own rules. Groups smaller than ``min_group`` are not scored.
    Returns (index -> detail, group -> summary).
    """
    flagged: dict[int, dict[str, Any]] = {}
    summary: dict[str, dict[str, Any]] = {}
    for name, lengths in sorted(_group_lengths(records).items()):
        if len(lengths) < min_group:
            summary[name] = {"records": len(lengths), "scored": False}
            continue
        logs = {i: math.log1p(v) for i, v in lengths.items()}
        median = statistics.median(logs.values())
        scale = max(MIN_LOG_SCALE, statistics.median(abs(v - median) for v in logs.values()) / 0.6745)
        median_length = round(math.expm1(median), 1)
        summary[name] = {"records": len(lengths), "scored": True, "median_length": median_length,
                         "log_scale": round(scale, 3)}
        for i, value in logs.items():
            z = (value - median) / scale
            if z > z_threshold or (short and z < -z_threshold):
                flagged[i] = {"length": lengths[i], "unit": name.split("/")[0], "z": round(z, 2),
                              "side": "long" if z > 0 else "short", "group": name,
                              "median_length": median_length, "threshold": z_threshold}
    return flagged, summary
