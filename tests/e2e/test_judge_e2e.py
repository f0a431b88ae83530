"""``sftdata run`` with the judge stage on the embedded model (SmolLM2-135M: a weak judge, which the run
says), calibrated against the shipped human-labelled gold file; the report shows the judge section.
Kept tiny: three records, short replies, no stricter retry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GOLD = ROOT / "tests" / "data" / "judge" / "gold.jsonl"


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 27 short generations; on a shared, overloaded 2-core VM this took > 15 min
def test_run_with_embedded_judge(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    rows = [{"instruction": "Name the capital of Italy.", "output": "Rome."},
            {"instruction": "What is 3 plus 4?", "output": "3 plus 4 is 9."},
            {"instruction": "把“你好”翻译成英文。", "output": "Hello."}]
    records.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    config = {"name": "judge-e2e", "seeds": str(records),
              "generate": {"enabled": False}, "filter": {"enabled": False}, "augment": {"enabled": False},
              "judge": {"rubric": "score", "max_tokens": 24, "retry_unparsable": False, "gold": str(GOLD)},
              "export": {"formats": ["alpaca"], "split": [1.0, 0.0, 0.0]},
              "finetune": {"enabled": False}, "eval": {"enabled": False}, "report": {}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "sftdata", "run", str(path), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "weak judge" in proc.stderr and "calibration against 24 human-labelled records" in proc.stderr
    judged = [json.loads(x) for x in (out / "judge" / "accepted.jsonl").read_text("utf-8").splitlines()]
    assert len(judged) == 3
    for row in judged:
        judge = row["meta"]["judge"]
        assert judge["model"] == "SmolLM2-135M-Instruct"
        # a score the reply gave, or no score and the raw reply: never a default
        assert (judge["score"] is not None and 1 <= judge["score"] <= 10) or (judge["error"] and "raw" in judge)
    calibration = json.loads((out / "judge" / "calibration.json").read_text())
    assert calibration["labelled"] == 24 and "keep" in calibration["criteria"]
    assert "Judge: scores, data quality" in (out / "report" / "report.html").read_text("utf-8")
