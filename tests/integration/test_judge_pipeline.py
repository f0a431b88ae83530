"""``sftdata run`` with the judge and select stages switched on, against the loopback server: judge sits
between augment and export, select after it; both are off unless the config names them; a rerun
skips them and sends nothing; the dry run counts the judge's requests."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from cli_helpers import run_cli
from test_judge import judge_reply

from sftdata.core.records import Record
from sftdata.pipeline import load_pipeline

RECORDS = [Record(f"Task number {i}: describe item {i}.", output=("GOOD answer" if i % 3 else "BAD answer"),
                  lang="en") for i in range(9)]


def write_config(tmp_path: Path, url: str, **stages) -> Path:
    seeds = tmp_path / "records.jsonl"
    seeds.write_text("".join(r.to_json() + "\n" for r in RECORDS), encoding="utf-8")
    config = {"name": "j", "lang": "en", "seeds": str(seeds),
              "llm": {"base_url": [url], "model": "judge-model", "retry_base": 0.01},
              "generate": {"enabled": False}, "filter": {"enabled": False}, "augment": {"enabled": False},
              "export": {"formats": ["alpaca"], "split": [1.0, 0.0, 0.0]},
              "finetune": {"enabled": False}, "eval": {"enabled": False}, "report": {"enabled": False}, **stages}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_judge_and_select_are_off_unless_configured(tmp_path: Path):
    pipeline = load_pipeline(write_config(tmp_path, "http://127.0.0.1:9/v1"))
    assert pipeline.stages["judge"] is None and pipeline.stages["select"] is None
    pipeline = load_pipeline(write_config(tmp_path, "http://127.0.0.1:9/v1", judge={}, select={"min_score": 5}))
    assert pipeline.stages["judge"].rubric == "score" and pipeline.stages["select"].min_score == 5


def test_run_with_judge_and_select(tmp_path: Path, make_server, capsys):
    server = make_server(reply=judge_reply)
    config = write_config(tmp_path, server.url, judge={"rubric": "self-instruct"}, select={"min_score": 3})
    out = tmp_path / "run"
    code, dry, _ = run_cli(["run", str(config), "--out", str(out), "--dry-run"], capsys)
    assert code == 0 and "judge" in dry and server.count == 0
    code, text, err = run_cli(["run", str(config), "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    judged = [json.loads(x) for x in (out / "judge" / "accepted.jsonl").read_text().splitlines()]
    assert len(judged) == 9 and all(r["meta"]["judge"]["rubric"] == "self-instruct" for r in judged)
    exported = (out / "export" / "alpaca" / "train.jsonl").read_text().splitlines()
    assert len(exported) == 6  # the three BAD answers are rated C (score 2) and dropped by select
    rejected = [json.loads(x) for x in (out / "select" / "rejected.jsonl").read_text().splitlines()]
    assert {(r["reason"], r["detail"]["score"]) for r in rejected} == {("below_min_score", 2.0)}
    assert server.count == 9
    code, text, err = run_cli(["run", str(config), "--out", str(out), "--no-progress"], capsys)
    assert code == 0 and server.count == 9 and "[judge] finished before" in err
