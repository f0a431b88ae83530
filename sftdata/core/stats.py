"""Dataset statistics shared by generate, export's dataset card and the report: the Self-Instruct paper's Table 1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..text.cjk import is_cjk_lang
from ..text.count import text_length
from .records import Record

__all__ = ["is_cjk_lang", "text_length", "table1"]


def _mean(values: list[int]) -> float:
    return round(sum(values) / len(values), 2) if values else 0.0


def table1(records: Iterable[Record]) -> dict[str, Any]:
    """Table 1 of Self-Instruct (Wang et al., 2022) for a set of instance records.

    Instructions are the distinct instruction texts; a task counts as classification when any of its
    records says so. Lengths are words (English) or characters (Chinese), per ``text_length``.
    """
    records = list(records)
    tasks: dict[str, bool | None] = {}
    task_lang: dict[str, str | None] = {}
    for rec in records:
        task_lang.setdefault(rec.instruction, rec.lang)
        previous = tasks.get(rec.instruction)
        tasks[rec.instruction] = True if (previous or rec.is_classification) else (
            rec.is_classification if previous is None else previous)
    langs = Counter(rec.lang or "unknown" for rec in records)
    return {
        "instructions": len(tasks),
        "classification_instructions": sum(1 for v in tasks.values() if v is True),
        "non_classification_instructions": sum(1 for v in tasks.values() if v is False),
        "unknown_type_instructions": sum(1 for v in tasks.values() if v is None),
        "instances": len(records),
        "instances_with_empty_input": sum(1 for rec in records if not rec.input.strip()),
        "avg_instruction_length": _mean([text_length(i, task_lang[i]) for i in tasks]),
        "avg_nonempty_input_length": _mean([text_length(r.input, r.lang) for r in records if r.input.strip()]),
        "avg_output_length": _mean([text_length(r.output, r.lang) for r in records]),
        "languages": dict(sorted(langs.items())),
        "length_unit": "words (en), characters (zh)",
    }

