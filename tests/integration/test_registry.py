"""A stage is one StageSpec: a stage that exists only in this test joins `sftdata run` (the dry-run plan
and a real run), the config keys, the hash chain and the report without touching anything else."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from sftdata import registry
from sftdata.cli import main
from sftdata.core.paths import seeds_dir
from sftdata.core.records import read_all, rejected, write_jsonl
from sftdata.core.settings import setting
from sftdata.core.stage import StageContext, StageResult, StageSpec


@dataclass
class TagConfig:
    label: str = setting("plain", help="The label written into every record's meta.")
    drop_first: bool = setting(True, help="Reject the first record (with reason 'first').")
    workers: int = setting(2, hashed=False, help="Threads (does not change the output).")


def run_tag(ctx: StageContext, config: TagConfig) -> StageResult:
    records = read_all(ctx.data())
    dropped = records[:1] if config.drop_first else []
    kept = records[len(dropped):]
    for rec in kept:
        rec.meta = {**rec.meta, "tag": config.label}
    write_jsonl(ctx.out / "accepted.jsonl", kept)
    write_jsonl(ctx.out / "rejected.jsonl", [rejected(r, "tag", "first") for r in dropped])
    return StageResult([ctx.out / "accepted.jsonl"], {"accepted": len(kept), "rejected": len(dropped)})


SPEC = StageSpec("tag", TagConfig, run_tag, help="label every record (a test's stage)")


@pytest.fixture
def tag_stage():
    registry.register(SPEC, after="clean")
    yield SPEC
    registry.unregister("tag")


def write_config(path: Path, **sections) -> Path:
    config = {"name": "t", "lang": "en", "seed": 1, "seeds": str(seeds_dir() / "en.jsonl"),
              "generate": {"enabled": False}, "filter": {}, "clean": {}, "augment": {"enabled": False},
              "tag": {"label": "hello"}, "export": {"formats": ["alpaca"], "split": [0.8, 0.1, 0.1]},
              "finetune": {"enabled": False}, "eval": {"enabled": False}, "report": {}, **sections}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _run(capsys, *args: str) -> str:
    main(list(args))
    return capsys.readouterr().out


def test_a_registered_stage_runs_in_order_hashes_and_reports(tmp_path: Path, tag_stage, capsys) -> None:
    assert registry.names().index("tag") == registry.names().index("clean") + 1
    config = write_config(tmp_path / "p.yaml")
    out = tmp_path / "run"

    plan = json.loads(_run(capsys, "run", str(config), "--out", str(out), "--dry-run", "--json"))["plan"]
    assert [s["stage"] for s in plan][2:5] == ["clean", "tag", "augment"] and plan[3]["action"] == "run"
    assert "tag.label" in _run(capsys, "run", "--list-keys")
    assert "\n    tag " in _run(capsys, "--help")

    _run(capsys, "run", str(config), "--out", str(out), "--no-progress")
    marker = json.loads((out / "tag" / "stage.json").read_text())
    assert marker["status"] == "done" and marker["summary_short"]["rejected"] == 1
    final = read_all([out / "accepted.jsonl"])  # what export wrote out comes through the tag stage
    assert final and all(r.meta.get("tag") == "hello" for r in final)
    stats = json.loads((out / "report" / "stats.json").read_text())
    assert stats["rejections"]["tag"] == {"first": 1}
    assert json.loads((out / "config.json").read_text())["stages"]["tag"]["label"] == "hello"

    # an unhashed setting re-runs nothing; a hashed one re-runs the stage and every one after it, not before
    before = {s: (out / s / "stage.json").read_text() for s in ("filter", "clean", "tag", "export")}
    _run(capsys, "run", str(config), "--out", str(out), "--no-progress", "--set", "tag.workers=8")
    assert {s: (out / s / "stage.json").read_text() for s in before} == before
    _run(capsys, "run", str(config), "--out", str(out), "--no-progress", "--set", "tag.label=bye")
    after = {s: (out / s / "stage.json").read_text() for s in before}
    assert after["filter"] == before["filter"] and after["clean"] == before["clean"]
    assert after["tag"] != before["tag"] and after["export"] != before["export"]
    assert all(r.meta.get("tag") == "bye" for r in read_all([out / "accepted.jsonl"]))


def test_a_registered_stage_section_is_checked_like_any_other(tmp_path: Path, tag_stage) -> None:
    from sftdata.core.errors import ConfigError
    from sftdata.pipeline import load_pipeline

    with pytest.raises(ConfigError, match="tag.colour"):
        load_pipeline(write_config(tmp_path / "p.yaml", tag={"colour": "red"}))
    assert load_pipeline(write_config(tmp_path / "q.yaml", tag={"enabled": False})).stages["tag"] is None
