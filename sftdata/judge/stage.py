"""The judge stage as :func:`sftdata.core.rounds.run_stage` drives it: rounds of :data:`CHUNK` records,
each judged concurrently and committed in input order (so the output never depends on timing), with
a checkpoint after each round. A round that meets the budget commits the records before the first one
it could not pay for; the rest wait for the next run."""

from __future__ import annotations

from typing import Any

from ..core.records import Record
from ..core.rundir import RunDir
from ..llm.client import LLM
from .config import JudgeConfig
from .judgement import Judgement

CHUNK = 32  # records per round (one checkpoint each); the output does not depend on it


def new_counts() -> dict[str, Any]:
    return {"judged": 0, "unparsable": 0, "failed": 0, "retried": 0, "scores": {}, "criteria": {},
            "winners": {}, "pairs_read_both": 0, "pairs_inconsistent": 0, "score_sum": 0.0}


def count(counts: dict[str, Any], judgement: Judgement) -> None:
    """Add one judgement to the running counts (the summary and the report's numbers)."""
    from .rubrics import PASS_SCORE

    counts["retried"] += judgement.attempts > 1
    if judgement.error is not None:
        counts["unparsable" if judgement.error == "unparsable" else "failed"] += 1
        return
    counts["judged"] += 1
    score = judgement.score
    key = _score_key(score)
    counts["scores"][key] = counts["scores"].get(key, 0) + 1
    counts["score_sum"] += score or 0.0
    for name, verdict in judgement.verdicts.items():
        if judgement.rubric == "pairwise":
            continue
        passed = verdict if isinstance(verdict, bool) else verdict >= PASS_SCORE
        tally = counts["criteria"].setdefault(name, [0, 0])
        tally[0] += bool(passed)
        tally[1] += 1
    if judgement.winner is not None:
        counts["winners"][judgement.winner] = counts["winners"].get(judgement.winner, 0) + 1
    if judgement.position_consistent is not None:
        counts["pairs_read_both"] += 1
        counts["pairs_inconsistent"] += not judgement.position_consistent


def _score_key(score: float | None) -> str:
    return "none" if score is None else (str(int(score)) if float(score).is_integer() else str(score))


def summarize(counts: dict[str, Any]) -> dict[str, Any]:
    """The numbers of the summary: distribution, mean, per-criterion pass rates, position bias."""
    judged = counts["judged"]
    out: dict[str, Any] = {
        "judged": judged, "unparsable": counts["unparsable"], "failed": counts["failed"],
        "retried": counts["retried"],
        "mean_score": round(counts["score_sum"] / judged, 3) if judged else None,
        "score_distribution": dict(sorted(counts["scores"].items(), key=lambda kv: float(kv[0]))),
        "criteria_pass_rate": {name: round(p / n, 3) for name, (p, n) in sorted(counts["criteria"].items()) if n},
    }
    if counts["winners"] or counts["pairs_read_both"]:
        out["winners"] = dict(sorted(counts["winners"].items()))
        both = counts["pairs_read_both"]
        out["position_bias_rate"] = round(counts["pairs_inconsistent"] / both, 3) if both else None
    return out


class JudgeStage:
    def __init__(self, config: JudgeConfig, records: list[Record]) -> None:
        self.config = config
        self.records = records
        self.model_name = ""

    def restore(self, rundir: RunDir, state: dict[str, Any] | None) -> None:
        self.rundir = rundir
        self.accepted = rundir.journal("accepted.jsonl")
        rundir.journal("failures.jsonl")  # created up front: an empty file says "no failures"
        state = state or {}
        self.position = state.get("position", 0)
        self.counts = state.get("counts") or new_counts()
        self.model_name = state.get("model", "")

    async def run_round(self, llm: LLM, round_no: int) -> None:
        from .api import judge_batch

        self.model_name = llm.model_name
        chunk = self.records[self.position:self.position + CHUNK]
        judgements = await judge_batch(llm, chunk, self.config)
        for record, judgement in zip(chunk, judgements):
            if judgement.error == "budget":
                break
            record.meta = {**record.meta, "judge": judgement.to_dict()}
            self.accepted.append(record.to_dict())
            count(self.counts, judgement)
            self.position += 1

    def done(self) -> bool:
        return self.position >= len(self.records)

    def state(self) -> dict[str, Any]:
        return {"position": self.position, "counts": self.counts, "model": self.model_name}

    def progress(self) -> tuple[int, int, str]:
        c = self.counts
        return self.position, len(self.records), f"judged={c['judged']} unparsable={c['unparsable']}"

    def summary(self) -> dict[str, Any]:
        return {"out": str(self.rundir.path), "rubric": self.config.rubric, "records": self.position,
                "inputs": len(self.records), "judge_model": self.model_name, **summarize(self.counts)}
