"""Selection by judge score, per-criterion pass and human labels; every dropped record is kept in
``rejected.jsonl`` with its reason and score."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.records import Record, read_all, record_id, rejected, write_jsonl
from ..judge.feedback import HumanLabel, fold, label_from_meta, read_feedback
from .config import SelectConfig

STAGE = "select"


def human_label_for(record: Record, labels: dict[str, HumanLabel]) -> HumanLabel | None:
    return labels.get(record.id) or label_from_meta(record.meta)


def _failed_criteria(judge: dict[str, Any], config: SelectConfig) -> list[str]:
    verdicts = judge.get("verdicts") or {}
    names = [n for n in verdicts if n not in ("ab", "ba")] if "all" in config.require else config.require
    failed = []
    for name in names:
        verdict = verdicts.get(name)
        passed = verdict if isinstance(verdict, bool) else isinstance(verdict, (int, float)) \
            and verdict >= config.criterion_min
        if not passed:
            failed.append(name)
    return failed


def decide(records: Sequence[Record], config: SelectConfig,
           labels: dict[str, HumanLabel]) -> tuple[list[Record], list[dict[str, Any]], Counter[str]]:
    """(kept records, rejected rows, reasons) in input order."""
    verdict: list[tuple[str, dict[str, Any]] | None] = []
    scores: list[float | None] = []
    human_kept: list[bool] = []
    out_records: list[Record] = []
    for record in records:
        record, label = _apply_human(record, labels)
        out_records.append(record)
        judge = record.meta.get("judge") or {}
        score = float(label.score) if label and label.score is not None else judge.get("score")
        scores.append(score)
        human_kept.append(bool(label and label.keep))
        detail = {"score": score, "judge_score": judge.get("score")}
        if label and label.keep is False:
            verdict.append(("human_rejected", detail))
        elif label and label.keep:
            verdict.append(None)
        elif score is None and not config.keep_unjudged:
            verdict.append(("unjudged", {**detail, "error": judge.get("error", "no meta.judge")}))
        elif score is not None and config.require and _failed_criteria(judge, config):
            verdict.append(("criterion_failed", {**detail, "failed": _failed_criteria(judge, config)}))
        elif score is not None and config.min_score is not None and score < config.min_score:
            verdict.append(("below_min_score", {**detail, "min_score": config.min_score}))
        else:
            verdict.append(None)
    if config.top is not None:
        _apply_top(verdict, scores, human_kept, config.top)
    kept, dropped, reasons = [], [], Counter()
    for record, decision in zip(out_records, verdict):
        if decision is None:
            kept.append(record)
        else:
            reasons[decision[0]] += 1
            dropped.append(rejected(record, STAGE, decision[0], decision[1]))
    return kept, dropped, reasons


def _apply_human(record: Record, labels: dict[str, HumanLabel]) -> tuple[Record, HumanLabel | None]:
    """The record with a person's edit applied and their label in ``meta.human``."""
    label = human_label_for(record, labels)
    if label is None:
        return record, None
    meta = dict(record.meta)
    meta["human"] = {k: v for k, v in (("keep", label.keep), ("score", label.score), ("choice", label.choice),
                                       ("rating", label.rating), ("verdicts", label.verdicts)) if v is not None}
    output = record.output
    if label.output is not None and label.output != record.output:
        meta["human"]["edited_from"] = record.id
        output = label.output
    return Record(instruction=record.instruction, input=record.input, output=output, lang=record.lang,
                  is_classification=record.is_classification, source=record.source, parent_id=record.parent_id,
                  meta=meta), label


def _apply_top(verdict: list, scores: list[float | None], human_kept: list[bool], top: float) -> None:
    """Among the records still in (not kept by a person), keep the best ``top`` fraction."""
    candidates = [i for i, v in enumerate(verdict) if v is None and not human_kept[i] and scores[i] is not None]
    if not candidates:
        return
    keep = math.ceil(top * len(candidates))
    ranked = sorted(candidates, key=lambda i: (-scores[i], i))  # stable: ties in input order
    cutoff = scores[ranked[keep - 1]]
    for i in ranked[keep:]:
        verdict[i] = ("below_top_fraction", {"score": scores[i], "top": top, "cutoff_score": cutoff})


def feedback_files(in_paths: Sequence[str | os.PathLike[str]], config: SelectConfig) -> list[Path]:
    if config.feedback:
        return [Path(p) for p in config.feedback]
    beside = dict.fromkeys(Path(p).resolve().parent / "feedback.jsonl" for p in in_paths)
    return [p for p in beside if p.exists()]


def select(in_paths: Sequence[str | os.PathLike[str]], config: SelectConfig,
           out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Select the records of ``in_paths`` into ``out_dir`` (accepted.jsonl, rejected.jsonl, stats.json)."""
    from ..core.errors import ConfigError
    from ..core.rundir import RunDir

    config.validate()
    if not in_paths:
        raise ConfigError("give at least one input file", "INPUTS")
    started = time.perf_counter()
    records = read_all(in_paths)
    files = feedback_files(in_paths, config)
    for path in files:
        if not path.exists():
            raise ConfigError(f"no such file: {path}", "--feedback")
    labels = fold([row for path in files for row in read_feedback(path)])
    kept, dropped, reasons = decide(records, config, labels)
    out = Path(out_dir)
    write_jsonl(out / "accepted.jsonl", kept)
    write_jsonl(out / "rejected.jsonl", dropped)
    summary = {"out": str(out), "inputs": len(records), "accepted": len(kept), "rejected": len(dropped),
               "reasons": dict(sorted(reasons.items())), "feedback_files": [str(p) for p in files],
               "human_labels": sum(1 for r in records if r.id in labels or label_from_meta(r.meta)),
               "seconds": round(time.perf_counter() - started, 3)}
    RunDir(out).write_json("stats.json", summary)
    return summary


__all__ = ["select", "decide", "record_id"]
