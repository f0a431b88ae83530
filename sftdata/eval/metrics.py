"""Metric functions for ``sftdata eval``: pure, on strings and counts, no model involved.

Normalization (exact match, label matching): Unicode NFKC, case folding, whitespace collapsed, and
punctuation stripped from both ends, so ``"Positive."`` equals ``"positive"`` and ``"是。"`` equals
``"是"``. Punctuation inside the text still counts.

ROUGE-L uses the novelty filter's "auto" tokenizer (``sftdata.filters.tokenize``): rouge-score's
for text without CJK characters and one token per CJK character otherwise, because the rouge-score
tokenizer drops every non-ASCII character and would score any two Chinese texts 0.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_SPACE = re.compile(r"\s+")


def _is_punct(char: str) -> bool:
    return unicodedata.category(char).startswith("P") or unicodedata.category(char).startswith("S")


def normalize_answer(text: str) -> str:
    """NFKC, casefold, collapse whitespace, strip punctuation/symbols at both ends."""
    text = _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    start, end = 0, len(text)
    while start < end and (_is_punct(text[start]) or text[start].isspace()):
        start += 1
    while end > start and (_is_punct(text[end - 1]) or text[end - 1].isspace()):
        end -= 1
    return text[start:end]


def exact_match(prediction: str, reference: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(reference)


# ---------------------------------------------------------------- ROUGE-L

def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 (LCS-based) between two texts, tokenized as the novelty filter does.

    The "auto" tokenizer: rouge-score's tokens for text without CJK characters, one token per CJK
    character otherwise. It needs no language tag, so a mislabeled record cannot zero its score.
    """
    from ..filter.rouge import rouge_l_f
    from ..filter.tokenize import get_tokenizer

    tokenize = get_tokenizer("auto")
    return float(rouge_l_f(tokenize(prediction), tokenize(reference)))


# ---------------------------------------------------------------- classification

def match_label(prediction: str, labels: Sequence[str]) -> str | None:
    """The label a generation names, or None when it names none of them (or several).

    ``labels`` are normalized label strings. In order:

    1. the normalized generation equals a label;
    2. it starts with a label followed by a non-word character (``"positive, because ..."``); a label
       ending in a CJK character may be followed by anything, Chinese having no spaces
       (``"是的，因为……"`` names ``"是"``); the longest such label wins;
    3. exactly one label occurs in it as a whole word (CJK labels: as a substring), as in a chatty
       ``"The review is positive."``. A generation naming two labels names none.

    Step 3 is lenient on purpose (instruction-tuned models answer in sentences); exact match stays
    strict and is reported beside it.
    """
    pred = normalize_answer(prediction)
    if pred in labels:
        return pred
    best: str | None = None
    for label in labels:
        if not label or not pred.startswith(label) or (best is not None and len(label) <= len(best)):
            continue
        if _is_wide_char(label[-1]) or not _is_word_char(pred[len(label):len(label) + 1]):
            best = label
    if best is not None:
        return best
    named = [label for label in labels if label and _occurs(label, pred)]
    # a label inside a longer named label ("positive" in "very positive") is not a second answer
    named = [label for label in named if not any(label != other and label in other for other in named)]
    return named[0] if len(named) == 1 else None


def _is_wide_char(char: str) -> bool:
    # width, not script (text.cjk is the script class): a label ending in a wide character (CJK, but
    # also full-width punctuation such as 。) has no word boundary after it to look for
    return unicodedata.east_asian_width(char) in ("W", "F")


def _is_word_char(char: str) -> bool:
    return bool(char) and (char.isalnum() or char == "_")


def _occurs(label: str, text: str) -> bool:
    if _is_wide_char(label[0]) and _is_wide_char(label[-1]):
        return label in text
    start = text.find(label)
    while start >= 0:
        before = text[start - 1:start] if start else ""
        after = text[start + len(label):start + len(label) + 1]
        if not _is_word_char(before) and not _is_word_char(after):
            return True
        start = text.find(label, start + 1)
    return False


@dataclass
class ClassificationScores:
    n: int
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    invalid_rate: float  # generations that name no label at all
    labels: list[str]
    per_label: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "accuracy": self.accuracy, "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall, "macro_f1": self.macro_f1,
            "invalid_rate": self.invalid_rate, "labels": self.labels, "per_label": self.per_label,
        }


def _ratio(num: float, den: float) -> float:
    # 0/0 is 0, as sklearn's zero_division=0: a label never predicted has precision 0
    return num / den if den else 0.0


def classification_scores(predictions: Sequence[str], references: Sequence[str]) -> ClassificationScores:
    """Accuracy and macro precision / recall / F1 over the label set.

    The label set is the distinct normalized references (what the task can answer). A generation is
    mapped to a label with :func:`match_label`; one that names none is wrong (it lowers accuracy and
    the recall of its true label) and counted in ``invalid_rate``. Macro averages weigh every label
    equally, including labels never predicted (precision 0).
    """
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    refs = [normalize_answer(r) for r in references]
    labels = sorted(set(refs))
    preds = [match_label(p, labels) for p in predictions]
    tp: Counter[str] = Counter()
    predicted: Counter[str] = Counter(p for p in preds if p is not None)
    support: Counter[str] = Counter(refs)
    for pred, ref in zip(preds, refs):
        if pred == ref:
            tp[ref] += 1
    per_label = {}
    for label in labels:
        precision = _ratio(tp[label], predicted[label])
        recall = _ratio(tp[label], support[label])
        f1 = _ratio(2 * precision * recall, precision + recall)
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support[label]}
    n = len(refs)
    macro = {key: _ratio(sum(v[key] for v in per_label.values()), len(labels))
             for key in ("precision", "recall", "f1")}
    return ClassificationScores(
        n=n, accuracy=_ratio(sum(tp.values()), n), macro_precision=macro["precision"],
        macro_recall=macro["recall"], macro_f1=macro["f1"],
        invalid_rate=_ratio(sum(1 for p in preds if p is None), n), labels=labels, per_label=per_label)


# ---------------------------------------------------------------- language modelling

def perplexity(mean_loss: float) -> float:
    """exp(loss), capped so that a diverged model prints ``inf`` instead of raising."""
    return math.exp(mean_loss) if mean_loss < 700 else math.inf


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
