"""A reduced demo, end to end on the embedded model; then a new filter threshold re-runs filter onwards only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REDUCED = ["--set", "generate.num_instructions=4", "--set", "augment.limit=2", "--set", "finetune.max_steps=3",
           "--set", "finetune.batch_tokens=1024",  # three short steps: the stage runs, CI stays short
           "--set", "eval.limit=4", "--set", "eval.max_new_tokens=24", "--no-progress"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sftdata", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=1500)


@pytest.mark.slow
def test_reduced_demo_then_only_filter_onwards_reruns(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = run("run", "examples/demo.yaml", "--out", str(out), *REDUCED)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for stage in ("generate", "filter", "clean", "augment", "export", "finetune", "eval", "report"):
        assert json.loads((out / stage / "stage.json").read_text())["status"] == "done", stage
    records = [json.loads(line) for line in (out / "accepted.jsonl").read_text().splitlines()]
    assert records and all(r["instruction"] and r["output"] for r in records)
    assert (out / "finetune" / "adapter_config.json").exists()
    assert (out / "report" / "report.html").exists()
    assert f"report:  {out / 'report' / 'report.html'}" in proc.stdout

    markers = {s: (out / s / "stage.json").read_text() for s in ("generate", "filter", "finetune", "report")}
    proc = run("run", "examples/demo.yaml", "--out", str(out), *REDUCED, "--set", "filter.rouge_threshold=0.69")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "generate" / "stage.json").read_text() == markers["generate"]
    for stage in ("filter", "finetune", "report"):
        assert (out / stage / "stage.json").read_text() != markers[stage], stage
