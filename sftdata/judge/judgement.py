"""The judge's results: :class:`Judgement` (what ``meta.judge`` holds) and :class:`PairVerdict`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Judgement:
    """One judge verdict on one response; :meth:`to_dict` is the ``meta.judge`` shape."""

    rubric: str
    score: float | None
    verdicts: dict[str, Any] = field(default_factory=dict)
    rationale: str = ""
    model: str = ""
    lang: str = "en"
    attempts: int = 1
    rating: str | None = None  # self-instruct: A-D
    winner: str | None = None  # pairwise: A, B or tie
    position_consistent: bool | None = None  # pairwise
    raw: str | None = None  # set only when no verdict was read
    error: str | None = None  # unparsable | request_failed | budget

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"rubric": self.rubric, "score": self.score}
        if self.rating is not None:
            data["rating"] = self.rating
        data["verdicts"] = self.verdicts
        if self.winner is not None:
            data["winner"] = self.winner
        if self.position_consistent is not None:
            data["position_consistent"] = self.position_consistent
        data.update(rationale=self.rationale, model=self.model, lang=self.lang, attempts=self.attempts)
        if self.error is not None:
            data.update(raw=self.raw or "", error=self.error)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Judgement:
        known = {k: data[k] for k in ("rubric", "score", "verdicts", "rationale", "model", "lang", "attempts",
                                      "rating", "winner", "position_consistent", "raw", "error") if k in data}
        known.setdefault("rubric", "score")
        known.setdefault("score", None)
        return cls(**known)


@dataclass(frozen=True)
class Candidates:
    """One instruction (and input) with the candidate responses to judge."""

    instruction: str
    responses: list[str]
    input: str = ""
    lang: str | None = None  # None: detected from the instruction (or the config's --lang)


@dataclass(frozen=True)
class Pair:
    """One instruction with two responses to compare."""

    instruction: str
    response_a: str
    response_b: str
    input: str = ""
    lang: str | None = None


@dataclass
class PairVerdict:
    """Both orders' verdicts, in the original labels, and the winner: orders that disagree are a tie."""

    winner: str | None  # "A", "B", "tie"; None when neither order could be read
    ab: str | None  # the verdict with A shown first
    ba: str | None  # the verdict with B shown first, mapped back to the original labels
    judgement: Judgement  # the meta.judge form (rubric "pairwise")

    @property
    def position_consistent(self) -> bool | None:
        if self.ab is None or self.ba is None:
            return None
        return self.ab == self.ba
