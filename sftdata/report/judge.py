"""The report's judge section: the score distribution, per-criterion pass rates laid out as the
Self-Instruct paper's data-quality table (Table 2 there: "does the instruction describe a valid task?"
... "all fields are valid"), agreement with human labels, and two example records per score level.

Reads ``meta.judge`` from the judged records: a run's ``judge/accepted.jsonl`` (every judged record,
before select drops any), else the report's own records; agreement from ``calibration.json`` (``judge
--gold``) and from records carrying both ``meta.judge`` and a human label (``meta.human``).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.records import Record, read_records
from . import data as views
from .html import paragraph, section, table

QUESTION_ROWS = (("valid_instruction", "Does the instruction describe a valid task?"),
                 ("appropriate_input", "Is the input appropriate for the instruction?"),
                 ("correct_output", "Is the output a correct and acceptable response to the instruction and input?"))
CRITERION_ROWS = (("helpfulness", "Helpfulness at or above the pass score"),
                  ("correctness", "Correctness at or above the pass score"),
                  ("fit", "Fit to the instruction at or above the pass score"))
RATING_NAMES = {"A": "correct and satisfying", "B": "acceptable with minor imperfections",
                "C": "responds but with significant errors", "D": "irrelevant or invalid"}
EXAMPLES_PER_LEVEL = 2
SNIPPET = 160


def _judged(inputs: Sequence[str | os.PathLike[str]], records: list[Record]) -> tuple[list[Record], list[dict]]:
    """The judged records and any calibration.json found beside them."""
    judged: list[Record] = []
    calibrations: list[dict] = []
    for item in inputs:
        path = Path(item)
        directory = path / "judge" if (path / "judge").is_dir() else path if path.is_dir() else path.parent
        if path.is_dir() and (directory / "accepted.jsonl").is_file():
            judged += [r for r in read_records(directory / "accepted.jsonl") if "judge" in r.meta]
        calibration = views.read_json(directory / "calibration.json") if (directory / "calibration.json").is_file() \
            else None
        if isinstance(calibration, dict):
            calibrations.append(calibration)
    if not judged:
        judged = [r for r in records if isinstance(r.meta.get("judge"), dict)]
    return judged, calibrations


def collect(inputs: Sequence[str | os.PathLike[str]], records: list[Record]) -> dict[str, Any] | None:
    """The section's numbers (JSON-ready), or None when no record was judged."""
    from ..judge.judgement import Judgement
    from ..judge.stage import count, new_counts, summarize

    judged, calibrations = _judged(inputs, records)
    if not judged:
        return None
    counts = new_counts()
    ratings: Counter[str] = Counter()
    examples: dict[str, list[dict[str, str]]] = defaultdict(list)
    all_valid = [0, 0]
    rubrics: Counter[str] = Counter()
    models: Counter[str] = Counter()
    for record in judged:
        judgement = Judgement.from_dict(record.meta["judge"])
        count(counts, judgement)
        rubrics[judgement.rubric] += 1
        models[judgement.model or "?"] += 1
        if judgement.rating:
            ratings[judgement.rating] += 1
        level = "none" if judgement.score is None else _level(judgement.score)
        if len(examples[level]) < EXAMPLES_PER_LEVEL:
            examples[level].append({"instruction": _snip(record.instruction), "output": _snip(record.output),
                                    "rationale": _snip(judgement.rationale or judgement.raw or "")})
        if judgement.ok and judgement.rubric != "pairwise" and judgement.verdicts:
            all_valid[1] += 1
            all_valid[0] += all(v if isinstance(v, bool) else v >= 7 for v in judgement.verdicts.values())
    stats = {"records": len(judged), "rubrics": dict(rubrics), "models": dict(models), **summarize(counts),
             "ratings": {k: ratings[k] for k in "ABCD" if ratings[k]},
             "all_fields_valid": round(all_valid[0] / all_valid[1], 3) if all_valid[1] else None,
             "examples": dict(sorted(examples.items(), key=lambda kv: (kv[0] == "none", -_float(kv[0])))),
             "calibration": calibrations, "human_agreement": _human_agreement(judged)}
    return stats


def _level(score: float) -> str:
    return str(int(score)) if float(score).is_integer() else str(score)


def _float(key: str) -> float:
    try:
        return float(key)
    except ValueError:
        return float("-inf")


def _snip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[:SNIPPET - 1] + "…"


def _human_agreement(judged: list[Record]) -> dict[str, Any] | None:
    from ..judge.calibrate import agreement

    labelled = [r for r in judged if isinstance(r.meta.get("human"), dict)]
    if not labelled:
        return None
    return agreement(labelled, labelled, str(labelled[0].meta["judge"].get("rubric", "score")))


def render(stats: dict[str, Any] | None) -> str:
    """The section's HTML ("" when nothing was judged). Every value goes through the escaping helpers."""
    if not stats:
        return ""
    parts = [paragraph(f"{stats['records']} judged records; rubric {', '.join(stats['rubrics'])}; judge "
                       f"{', '.join(stats['models'])}. {stats['unparsable']} replies held no verdict (recorded "
                       f"raw, no score), {stats['failed']} requests failed.")]
    distribution = stats["score_distribution"]
    total = sum(distribution.values()) or 1
    parts.append(table(["score", "records", "share"],
                       [(k, v, f"{100 * v / total:.1f}%") for k, v in distribution.items()]))
    if stats["ratings"]:
        parts.append(table(["rating", "meaning", "records"],
                           [(k, RATING_NAMES[k], v) for k, v in stats["ratings"].items()]))
    rows = [(label, f"{100 * stats['criteria_pass_rate'][key]:.0f}%")
            for key, label in QUESTION_ROWS + CRITERION_ROWS if key in stats["criteria_pass_rate"]]
    if rows:
        if stats["all_fields_valid"] is not None:
            rows.append(("All fields are valid", f"{100 * stats['all_fields_valid']:.0f}%"))
        parts.append(paragraph("Data quality as the Self-Instruct paper's review table (share answered yes; "
                               "score rubric: sub-score at least 7):"))
        parts.append(table(["quality review question", "yes %"], rows))
    if stats.get("position_bias_rate") is not None:
        parts.append(paragraph(f"Pairwise: position-bias rate {stats['position_bias_rate']:.3f} (pairs whose two "
                               f"orders disagreed, counted as ties); winners {stats['winners']}."))
    parts += [_agreement_table(c, "calibration.json (judge --gold)") for c in stats["calibration"]]
    if stats["human_agreement"]:
        parts.append(_agreement_table(stats["human_agreement"], "human labels on these records"))
    for level, rows_ in stats["examples"].items():
        parts.append(paragraph(f"Examples at score {level}:" if level != "none" else "Examples with no verdict:"))
        parts.append(table(["instruction", "output", "judge's reason"],
                           [(e["instruction"], e["output"], e["rationale"]) for e in rows_]))
    return section("Judge: scores, data quality, agreement with people", *parts)


def _agreement_table(result: dict[str, Any], origin: str) -> str:
    rows = [(name, s["n"], _fmt(s["accuracy"]), _fmt(s["kappa"])) for name, s in result.get("criteria", {}).items()]
    if result.get("spearman"):
        rows.append(("score (Spearman)", result["spearman"]["n"], "", _fmt(result["spearman"]["rho"])))
    if result.get("position_bias_rate") is not None:
        rows.append(("position-bias rate", "", _fmt(result["position_bias_rate"]), ""))
    note = paragraph(f"Agreement with {origin}: {result.get('labelled', 0)} labelled records, "
                     f"{result.get('judge_unparsable', 0)} without a judge verdict."
                     + (f" {result['warning']}" if result.get("warning") else ""))
    return note + table(["criterion", "n", "accuracy", "Cohen's kappa / rho"], rows)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
