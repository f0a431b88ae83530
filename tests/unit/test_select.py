"""``sftdata select`` decisions: min score, top fraction, per-criterion pass, unjudged records, and human
labels (feedback.jsonl and meta.human) overriding the judge; every drop in rejected.jsonl with its
reason and score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_cli

from sftdata.core.records import Record
from sftdata.judge import append_feedback, human_labels
from sftdata.select.config import SelectConfig
from sftdata.select.stage import decide


def judged(name: str, score: float | None, **verdicts) -> Record:
    judge = {"rubric": "score", "score": score, "verdicts": verdicts, "rationale": "", "model": "m"}
    if score is None:
        judge.update(error="unparsable", raw="???")
    return Record(name, output=f"answer to {name}", meta={"judge": judge})


RECORDS = [judged("a", 9, helpfulness=9, correctness=9, fit=9), judged("b", 4, helpfulness=8, correctness=3, fit=5),
           judged("c", 7, helpfulness=7, correctness=8, fit=6), judged("d", None), judged("e", 8, helpfulness=8,
                                                                                          correctness=8, fit=8)]


def names(records: list[Record]) -> list[str]:
    return [r.instruction for r in records]


def test_min_score_and_unjudged():
    kept, dropped, reasons = decide(RECORDS, SelectConfig(min_score=7), {})
    assert names(kept) == ["a", "c", "e"]
    assert [(d["record"]["instruction"], d["reason"], d["detail"]["score"]) for d in dropped] == \
        [("b", "below_min_score", 4), ("d", "unjudged", None)]
    assert reasons == {"below_min_score": 1, "unjudged": 1}
    kept, _, _ = decide(RECORDS, SelectConfig(min_score=7, keep_unjudged=True), {})
    assert names(kept) == ["a", "c", "d", "e"]


def test_top_fraction_keeps_the_best_in_input_order():
    kept, dropped, _ = decide(RECORDS, SelectConfig(top=0.5), {})
    assert names(kept) == ["a", "e"]  # ceil(0.5 * 4 scored) = 2: 9 and 8
    top = [d for d in dropped if d["reason"] == "below_top_fraction"]
    assert [d["record"]["instruction"] for d in top] == ["b", "c"] and top[0]["detail"]["cutoff_score"] == 8


def test_per_criterion_pass():
    kept, dropped, _ = decide(RECORDS, SelectConfig(require=["correctness"]), {})
    assert names(kept) == ["a", "c", "e"]
    assert dropped[0]["reason"] == "criterion_failed" and dropped[0]["detail"]["failed"] == ["correctness"]
    kept, _, _ = decide(RECORDS, SelectConfig(require=["all"]), {})
    assert names(kept) == ["a", "e"]  # c fails fit (6 < 7)
    si = Record("q", output="o", meta={"judge": {"rubric": "self-instruct", "score": 3, "rating": "B", "verdicts": {
        "valid_instruction": True, "appropriate_input": False, "correct_output": True}}})
    kept, dropped, _ = decide([si], SelectConfig(require=["all"]), {})
    assert not kept and dropped[0]["detail"]["failed"] == ["appropriate_input"]


def test_human_labels_override_the_judge(tmp_path: Path):
    feedback = tmp_path / "feedback.jsonl"
    append_feedback(feedback, {"id": RECORDS[1].id, "index": 1, "action": "keep"})  # judge: 4
    append_feedback(feedback, {"id": RECORDS[0].id, "index": 0, "action": "reject"})  # judge: 9
    append_feedback(feedback, {"id": RECORDS[2].id, "index": 2, "action": "score", "score": 3})  # judge: 7
    append_feedback(feedback, {"id": RECORDS[4].id, "index": 4, "action": "edit", "output": "better answer"})
    labels = human_labels(feedback)
    kept, dropped, reasons = decide(RECORDS, SelectConfig(min_score=7), labels)
    assert names(kept) == ["b", "e"]
    assert kept[0].meta["human"] == {"keep": True}
    assert kept[1].output == "better answer" and kept[1].meta["human"]["edited_from"] == RECORDS[4].id
    assert reasons == {"human_rejected": 1, "below_min_score": 1, "unjudged": 1}
    by_name = {d["record"]["instruction"]: d for d in dropped}
    assert by_name["c"]["detail"] == {"score": 3.0, "judge_score": 7, "min_score": 7}
    # undo clears a label: the judge decides again
    append_feedback(feedback, {"id": RECORDS[0].id, "index": 0, "action": "undo"})
    kept, _, _ = decide(RECORDS, SelectConfig(min_score=7), human_labels(feedback))
    assert "a" in names(kept)


def test_cli_select_reads_feedback_beside_the_input(tmp_path: Path, capsys):
    data = tmp_path / "judged.jsonl"
    data.write_text("".join(r.to_json() + "\n" for r in RECORDS), encoding="utf-8")
    append_feedback(tmp_path / "feedback.jsonl", {"id": RECORDS[3].id, "index": 3, "action": "keep"})
    code, out, err = run_cli(["select", str(data), "--out", str(tmp_path / "sel"), "--min-score", "8"], capsys)
    assert code == 0, err
    kept = [json.loads(x)["instruction"] for x in (tmp_path / "sel" / "accepted.jsonl").read_text().splitlines()]
    assert kept == ["a", "d", "e"]
    rejected = [json.loads(x) for x in (tmp_path / "sel" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["reason"], r["detail"]["score"]) for r in rejected] == [("below_min_score", 4), ("below_min_score", 7)]
    assert all(r["stage"] == "select" for r in rejected)
    code, _, err = run_cli(["select", str(data), "--out", str(tmp_path / "x"), "--top", "1.5"], capsys)
    assert code == 2 and "--top" in err


def test_bad_feedback_line_names_file_and_line(tmp_path: Path, capsys):
    data = tmp_path / "judged.jsonl"
    data.write_text(RECORDS[0].to_json() + "\n", encoding="utf-8")
    (tmp_path / "feedback.jsonl").write_text('{"id": "x", "action": "keep"}\n{"id": "x", "action": "score", '
                                             '"score": 11}\n', encoding="utf-8")
    code, _, err = run_cli(["select", str(data), "--out", str(tmp_path / "sel")], capsys)
    assert code == 2 and "feedback.jsonl:2" in err and "1-10" in err


def test_kappa_and_spearman_by_hand():
    from sftdata.judge.calibrate import cohen_kappa, spearman

    assert cohen_kappa(["A", "C", "D"], ["A", "B", "D"]) == pytest.approx(4 / 7)
    assert cohen_kappa([True, True], [True, True]) is None  # chance agreement total: undefined
    assert cohen_kappa([True, False, True, False], [False, True, False, True]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 2, 3], [3, 2, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
