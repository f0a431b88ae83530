"""From ranked candidates to preference pairs, and what cannot make a pair, with the reason.

A prompt's candidates carry a score (a judge's 1-10, a reward model's scalar, pairwise win counts, a
person's score); the best and the worst make the pair (UltraFeedback's binarization), their score
difference the margin. A tie, or a margin under ``min_margin``, is not a preference: the prompt
goes to rejected.jsonl with the reason, as does a prompt with fewer than two scored candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# rejected.jsonl reasons
TIE, LOW_MARGIN, TOO_FEW, NO_VERDICT, SAME_TEXT = "tie", "margin_below_min", "too_few_candidates", "no_verdict", \
    "identical_responses"


@dataclass
class Candidate:
    response: str
    source: str                          # "record", "sample:<model>", "model:<name>", "adapter:<dir>", ...
    score: float | None = None           # None: could not be scored (the judge gave no verdict)
    detail: dict[str, Any] = field(default_factory=dict)  # e.g. the judge's rationale, a record id


@dataclass
class Prompt:
    """One instruction (+ input, + system) with its candidate responses."""

    instruction: str
    input: str = ""
    system: str = ""
    lang: str | None = None
    candidates: list[Candidate] = field(default_factory=list)
    decided: bool = False  # a choice (A/B, an edit) already made its pair or its tie

    @property
    def key(self) -> tuple[str, str, str]:
        return (" ".join(self.instruction.split()).casefold(), self.input.strip(), self.system)

    def messages(self) -> list[dict[str, str]]:
        user = self.instruction + ("\n\n" + self.input if self.input else "")
        return ([{"role": "system", "content": self.system}] if self.system else []) + \
            [{"role": "user", "content": user}]


def pair_row(prompt: Prompt, chosen: Candidate, rejected: Candidate, margin: float,
             ranked_by: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pair as ``sftdata pairs`` writes it: TRL's standard columns + margin + provenance."""
    row: dict[str, Any] = {"prompt": prompt.instruction + ("\n\n" + prompt.input if prompt.input else ""),
                           "chosen": chosen.response, "rejected": rejected.response, "margin": round(margin, 6)}
    if prompt.system:
        row["system"] = prompt.system
    row["provenance"] = {"ranked_by": ranked_by, "chosen": {"source": chosen.source, "score": chosen.score,
                                                            **chosen.detail},
                         "rejected": {"source": rejected.source, "score": rejected.score, **rejected.detail},
                         "candidates": len(prompt.candidates), **(extra or {})}
    if prompt.lang:
        row["lang"] = prompt.lang
    return row


def no_pair(prompt: Prompt, reason: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The rejected.jsonl row of a prompt that made no pair."""
    return {"record": {"instruction": prompt.instruction, "input": prompt.input, "system": prompt.system,
                       "candidates": [{"response": c.response, "source": c.source, "score": c.score}
                                      for c in prompt.candidates]},
            "stage": "pairs", "reason": reason, "detail": detail}


def best_and_worst(prompt: Prompt, min_margin: float, ranked_by: str) -> tuple[dict | None, dict | None]:
    """(pair row, None) or (None, rejected row) from the scored candidates of one prompt."""
    scored = [c for c in prompt.candidates if c.score is not None]
    distinct = {c.response.strip() for c in scored}
    if len(scored) < 2 or len(distinct) < 2:
        reason = SAME_TEXT if len(scored) >= 2 else (NO_VERDICT if len(prompt.candidates) >= 2 else TOO_FEW)
        return None, no_pair(prompt, reason, {"scored": len(scored), "candidates": len(prompt.candidates)})
    # stable: among equal scores the earlier candidate wins, so a run is reproducible
    best = max(scored, key=lambda c: c.score)  # type: ignore[arg-type,return-value]
    worst = min((c for c in scored if c.response.strip() != best.response.strip()),
                key=lambda c: c.score)  # type: ignore[arg-type,return-value]
    margin = float(best.score) - float(worst.score)  # type: ignore[arg-type]
    if margin == 0:
        return None, no_pair(prompt, TIE, {"score": best.score})
    if margin < min_margin:
        return None, no_pair(prompt, LOW_MARGIN, {"margin": margin, "min_margin": min_margin})
    return pair_row(prompt, best, worst, margin, ranked_by), None


def round_robin_scores(n: int, winners: Sequence[tuple[int, int, str | None]]) -> list[float | None]:
    """Win counts from pairwise verdicts ``(i, j, "A"|"B"|"tie"|None)``: a win 1, a tie 0.5 each,
    normalized by the comparisons each candidate took part in; None when none was readable."""
    wins = [0.0] * n
    played = [0] * n
    for i, j, winner in winners:
        if winner is None:
            continue
        played[i] += 1
        played[j] += 1
        if winner == "A":
            wins[i] += 1
        elif winner == "B":
            wins[j] += 1
        else:
            wins[i] += 0.5
            wins[j] += 0.5
    return [wins[k] / played[k] if played[k] else None for k in range(n)]


def build_pairs(prompts: Sequence[Prompt], min_margin: float, ranked_by: str) -> tuple[list[dict], list[dict]]:
    pairs, rejected = [], []
    for prompt in prompts:
        pair, reject = best_and_worst(prompt, min_margin, ranked_by)
        if pair is not None:
            pairs.append(pair)
        else:
            rejected.append(reject)
    return pairs, rejected
