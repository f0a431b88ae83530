"""The select stage's settings."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.settings import setting

CRITERIA = ("valid_instruction", "appropriate_input", "correct_output", "helpfulness", "correctness", "fit")


@dataclass
class SelectConfig:
    """What ``sftdata select`` keeps. Human labels (feedback.jsonl, meta.human) override the judge."""

    min_score: float | None = setting(None, help="Keep records whose score is at least this (meta.judge.score; "
                                                 "self-instruct: A=4 B=3 C=2 D=1; score: 1-10).")
    top: float | None = setting(None, help="Keep the best-scored FRACTION of the records (0-1], ties kept "
                                           "in input order.", metavar="FRACTION")
    require: list[str] = setting(list, choices=CRITERIA + ("all",), metavar="CRITERION",
                                 help="Per-criterion pass: each named criterion must pass (self-instruct: "
                                      "answered yes; score rubric: sub-score >= --criterion-min); all: every "
                                      "criterion the judge gave.")
    criterion_min: int = setting(7, help="A score-rubric criterion passes at this sub-score or above.")
    feedback: list[str] = setting(list, metavar="FILE", path=True,
                                  help="Human feedback files (review page's feedback.jsonl). Default: a "
                                       "feedback.jsonl beside each input.")
    keep_unjudged: bool = setting(False, help="Keep records the judge could not score (default: rejected, "
                                              "reason 'unjudged').")

    def validate(self) -> None:
        if self.top is not None and not 0 < self.top <= 1:
            raise ConfigError("must be a fraction within (0, 1]", "--top")
        if not 1 <= self.criterion_min <= 10:
            raise ConfigError("must be between 1 and 10", "--criterion-min")
        for name in self.require:
            if name not in CRITERIA + ("all",):
                raise ConfigError(f"unknown criterion {name!r} (known: {', '.join(CRITERIA)}, all)", "--require")
