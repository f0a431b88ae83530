"""The three rubrics: which prompt each sends and how a reply becomes a verdict.

Prompts are files, ``prompts/<lang>/judge_<rubric>.txt``, and the stricter retry instruction
``judge_strict_<rubric>.txt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..augment.prompting import render
from ..core.paths import load_prompt
from . import parse

SELF_INSTRUCT, SCORE, PAIRWISE = "self-instruct", "score", "pairwise"
RATING_SCORES = {"A": 4.0, "B": 3.0, "C": 2.0, "D": 1.0}
QUESTIONS = ("valid_instruction", "appropriate_input", "correct_output")
CRITERIA = ("helpfulness", "correctness", "fit")
PASS_SCORE = 7  # a score-rubric criterion passes at this sub-score or above (the report's table)
SCALE = {SELF_INSTRUCT: (1.0, 4.0), SCORE: (1.0, 10.0), PAIRWISE: (0.0, 1.0)}
_CRITERION_LABELS = {
    "helpfulness": r"helpful(?:ness)?|有用性|帮助性",
    "correctness": r"correct(?:ness)?|accuracy|正确性|准确性",
    "fit": r"fit|relevance|instruction[- ]following|契合度|符合度|相关性",
}


@dataclass
class Reading:
    """What one reply says; ``ok`` False when it holds no verdict."""

    score: float | None = None
    rating: str | None = None
    winner: str | None = None
    verdicts: dict[str, Any] = field(default_factory=dict)
    rationale: str = ""

    @property
    def ok(self) -> bool:
        return self.score is not None or self.winner is not None


def prompt(rubric: str, lang: str, instruction: str, input_text: str, output: str, output_b: str = "") -> str:
    name = "judge_self_instruct" if rubric == SELF_INSTRUCT else f"judge_{rubric}"
    return render(load_prompt(lang, name), instruction=instruction, input=input_text, output=output,
                  output_a=output, output_b=output_b)


def strict_instruction(rubric: str, lang: str) -> str:
    return load_prompt(lang, f"judge_strict_{rubric.replace('-', '_')}").strip()


def read(rubric: str, text: str) -> Reading:
    rationale = parse.parse_rationale(text)
    if rubric == SELF_INSTRUCT:
        rating = parse.parse_rating(text)
        return Reading(score=RATING_SCORES.get(rating or ""), rating=rating, verdicts=parse.parse_questions(text),
                       rationale=rationale)
    if rubric == SCORE:
        return Reading(score=parse.parse_score(text), verdicts=criteria(text), rationale=rationale)
    return Reading(winner=parse.parse_winner(text), rationale=rationale)


def criteria(text: str) -> dict[str, int]:
    """The score rubric's sub-scores a reply gives ("Helpfulness: 8", JSON keys), by criterion."""
    clean = parse.normalize(text)
    obj = parse.json_object(clean) or {}
    found: dict[str, int] = {}
    for name, label in _CRITERION_LABELS.items():
        value = obj.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 1 <= value <= 10:
            found[name] = int(value)
            continue
        match = re.search(rf"^\W*(?:{label})\w*\s*(?:score)?\s*[:：=]\s*{parse._NUM}", clean, re.I | re.M)
        number = parse.cn_number(match.group(1)) if match else None
        if number is not None and 1 <= number <= 10:
            found[name] = int(number)
    return found
