"""Agreement of the judge with human labels: accuracy and Cohen's kappa per criterion, Spearman for
scores, the position-bias rate for pairwise. Tells a user whether to trust the judge before paying for
a full run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..core.records import Record
from .feedback import HumanLabel, label_from_meta
from .rubrics import PAIRWISE, PASS_SCORE, QUESTIONS, RATING_SCORES, SELF_INSTRUCT


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    """Cohen's kappa of two raters over the same items; None when chance agreement is total (every
    label one class on both sides: kappa is undefined)."""
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1  # ties share their mean rank
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho (Pearson on mean ranks); None with fewer than 2 items or a constant side."""
    if len(a) < 2:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return None
    return cov / (va * vb) ** 0.5


def _pair_stats(name: str, human: list[Any], judge: list[Any]) -> dict[str, Any]:
    n = len(human)
    kappa = cohen_kappa(human, judge)
    return {"n": n, "accuracy": round(sum(h == j for h, j in zip(human, judge)) / n, 3) if n else None,
            "kappa": round(kappa, 3) if kappa is not None else None}


def _judge_keeps(judge: dict[str, Any]) -> bool:
    """The judge's keep decision, for agreement with a person's keep / reject."""
    if judge.get("rubric") == SELF_INSTRUCT:
        return judge.get("rating") in ("A", "B")
    return (judge.get("score") or 0) >= PASS_SCORE


def agreement(gold: list[Record], judged: list[Record], rubric: str,
              feedback: dict[str, HumanLabel] | None = None) -> dict[str, Any]:
    """Compare the human labels of ``gold`` (``meta.human``, or ``feedback`` by record id: the review
    page's labels, which win) with the judge's verdicts on the same records (``judged``, by record id)."""
    verdicts = {r.id: r.meta.get("judge") or {} for r in judged}
    pairs: list[tuple[HumanLabel, dict[str, Any]]] = []
    unlabelled = 0
    for record in gold:
        label = (feedback or {}).get(record.id) or label_from_meta(record.meta)
        if label is None:
            unlabelled += 1
            continue
        pairs.append((label, verdicts.get(record.id, {})))
    read = [(h, j) for h, j in pairs if j.get("score") is not None]
    result: dict[str, Any] = {"rubric": rubric, "labelled": len(pairs), "unlabelled": unlabelled,
                              "judge_unparsable": len(pairs) - len(read), "criteria": {}}
    criteria = result["criteria"]
    if rubric == PAIRWISE:
        both = [(h.choice, j.get("winner")) for h, j in read if h.choice]
        criteria["winner"] = _pair_stats("winner", [h for h, _ in both], [w for _, w in both])
        consistent = [j.get("position_consistent") for _, j in read if j.get("position_consistent") is not None]
        result["position_bias_rate"] = round(consistent.count(False) / len(consistent), 3) if consistent else None
        return result
    if rubric == SELF_INSTRUCT:
        for name in QUESTIONS:
            both = [(h.verdicts[name], j["verdicts"][name]) for h, j in read
                    if h.verdicts and name in h.verdicts and name in (j.get("verdicts") or {})]
            criteria[name] = _pair_stats(name, [h for h, _ in both], [v for _, v in both])
        rated = [(h.rating, j.get("rating")) for h, j in read if h.rating]
        criteria["rating"] = _pair_stats("rating", [h for h, _ in rated], [v for _, v in rated])
    keeps = [(h.keep, _judge_keeps(j)) for h, j in read if h.keep is not None]
    criteria["keep"] = _pair_stats("keep", [h for h, _ in keeps], [v for _, v in keeps])
    scored = [(_human_score(h, rubric), float(j["score"])) for h, j in read]
    scored = [(h, v) for h, v in scored if h is not None]
    rho = spearman([h for h, _ in scored], [v for _, v in scored])
    result["spearman"] = {"n": len(scored), "rho": round(rho, 3) if rho is not None else None}
    return result


def _human_score(label: HumanLabel, rubric: str) -> float | None:
    if rubric == SELF_INSTRUCT and label.rating:
        return RATING_SCORES[label.rating]
    return float(label.score) if label.score is not None else None


def format_agreement(result: dict[str, Any]) -> str:
    """The calibration as a few printable lines."""
    lines = [f"[judge] calibration against {result['labelled']} human-labelled records "
             f"(rubric {result['rubric']}, judge {result.get('judge_model', '?')}; "
             f"{result['judge_unparsable']} judge replies unreadable):"]
    for name, stats in result["criteria"].items():
        lines.append(f"  {name:<18} n={stats['n']:<4} accuracy={_num(stats['accuracy'])} kappa={_num(stats['kappa'])}")
    if "spearman" in result:
        lines.append(f"  {'score':<18} n={result['spearman']['n']:<4} spearman={_num(result['spearman']['rho'])}")
    if "position_bias_rate" in result:
        lines.append(f"  position bias rate: {_num(result['position_bias_rate'])} (pairs whose two orders disagreed)")
    if result.get("warning"):
        lines.append(f"  warning: {result['warning']}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
