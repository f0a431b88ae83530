"""The report's judge section: score distribution, the Self-Instruct data-quality table, agreement with
people (calibration.json and meta.human), two examples per score level, all text escaped."""

from __future__ import annotations

import json
from pathlib import Path

from sftdata.core.records import Record
from sftdata.report.stage import build_report


def judged(i: int, rating: str, valid: bool, input_ok: bool, correct: bool, human: dict | None = None) -> Record:
    judge = {"rubric": "self-instruct", "score": {"A": 4, "B": 3, "C": 2, "D": 1}[rating], "rating": rating,
             "verdicts": {"valid_instruction": valid, "appropriate_input": input_ok, "correct_output": correct},
             "rationale": f"reason {i}", "model": "judge-x", "lang": "en", "attempts": 1}
    meta = {"judge": judge, **({"human": human} if human else {})}
    return Record(f"Instruction {i} <script>alert(1)</script>", output=f"Output {i}", meta=meta)


def test_report_has_the_judge_section(tmp_path: Path):
    run = tmp_path / "run"
    (run / "judge").mkdir(parents=True)
    records = [judged(0, "A", True, True, True, {"rating": "A", "keep": True}),
               judged(1, "A", True, True, True), judged(2, "A", True, True, True),
               judged(3, "B", True, False, True, {"rating": "C", "keep": False}),
               judged(4, "C", True, True, False), judged(5, "D", False, True, False, {"rating": "D", "keep": False})]
    unread = Record("Instruction 6", output="Output 6", meta={"judge": {
        "rubric": "self-instruct", "score": None, "verdicts": {}, "rationale": "", "model": "judge-x",
        "attempts": 2, "raw": "no idea", "error": "unparsable"}})
    (run / "judge" / "accepted.jsonl").write_text("".join(r.to_json() + "\n" for r in records + [unread]))
    (run / "judge" / "calibration.json").write_text(json.dumps({
        "rubric": "self-instruct", "labelled": 24, "judge_unparsable": 3, "criteria": {
            "rating": {"n": 21, "accuracy": 0.381, "kappa": 0.12}}, "spearman": {"n": 21, "rho": 0.2},
        "warning": "weak judge"}))
    (run / "accepted.jsonl").write_text("".join(r.to_json() + "\n" for r in records[:3]))
    stats = build_report([run], tmp_path / "report")
    j = stats["judge"]
    assert j["records"] == 7 and j["unparsable"] == 1
    assert j["score_distribution"] == {"1": 1, "2": 1, "3": 1, "4": 3}
    assert j["ratings"] == {"A": 3, "B": 1, "C": 1, "D": 1}
    assert j["criteria_pass_rate"] == {"appropriate_input": 0.833, "correct_output": 0.667, "valid_instruction": 0.833}
    assert j["all_fields_valid"] == 0.5
    assert [len(v) for v in j["examples"].values()] == [2, 1, 1, 1, 1]  # 4, 3, 2, 1, none
    assert list(j["examples"]) == ["4", "3", "2", "1", "none"]
    assert j["human_agreement"]["criteria"]["rating"] == {"n": 3, "accuracy": 0.667, "kappa": 0.571}  # (2/3 - 2/9) / (1 - 2/9)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Judge: scores, data quality, agreement with people" in page
    assert "Does the instruction describe a valid task?" in page and "All fields are valid" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "calibration.json (judge --gold)" in page and "weak judge" in page
    saved = json.loads((tmp_path / "report" / "stats.json").read_text())
    assert saved["judge"]["score_distribution"] == j["score_distribution"]


def test_report_without_judged_records_has_no_judge_section(tmp_path: Path):
    data = tmp_path / "d.jsonl"
    data.write_text(Record("Plain", output="x").to_json() + "\n")
    stats = build_report([data], tmp_path / "report")
    assert stats["judge"] is None
    assert "Judge:" not in (tmp_path / "report" / "report.html").read_text()
