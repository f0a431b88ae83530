"""`sftdata run` and `sftdata init` against the loopback server: config errors, --set, --dry-run, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from generate_replies import make_reply
from test_augment import FakeModel, classify

from sftdata.cli import main
from sftdata.core.errors import ConfigError
from sftdata.core.paths import seeds_dir
from sftdata.pipeline import load_pipeline, plan

ROOT = Path(__file__).resolve().parents[2]
SEEDS = seeds_dir() / "en.jsonl"


def combined_reply():
    generate = make_reply([json.loads(line)["instruction"] for line in SEEDS.read_text().splitlines()], "en")
    augment = FakeModel()

    def reply(body: dict, n: int):
        prompt = body["messages"][-1]["content"]
        if classify(prompt) != "answer" or body.get("max_tokens") == 77:  # augment's requests
            return augment(body, n)
        return generate(body, n)

    return reply


def write_config(path: Path, url: str, **stages) -> Path:
    config = {
        "name": "t", "lang": "en", "seed": 1, "seeds": str(SEEDS),
        "llm": {"base_url": [url], "model": "test-model", "retry_base": 0.01, "concurrency": 8},
        "generate": {"num_instructions": 12, "instances_per_task": 2, "round_size": 4},
        "filter": {"rouge_threshold": 0.7},
        "clean": {},
        "augment": {"ops": ["constraints", "rule:template"], "limit": 4, "max_tokens": 77, "rouge_threshold": 0.9},
        "export": {"formats": ["alpaca", "messages"], "split": [0.8, 0.1, 0.1]},
        "finetune": {"enabled": False}, "eval": {"enabled": False}, "report": {},
    }
    for name, value in stages.items():
        config[name] = value
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run_cli(*args: str) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-c", "from sftdata.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_pipeline_runs_resumes_and_reruns_only_what_changed(tmp_path: Path, make_server) -> None:
    server = make_server(reply=combined_reply())
    config = write_config(tmp_path / "p.yaml", server.url)
    out = tmp_path / "run"
    code, text = run_cli("run", str(config), "--out", str(out), "--no-progress")
    assert code == 0, text
    for stage in ("generate", "filter", "clean", "augment", "export", "report"):
        marker = json.loads((out / stage / "stage.json").read_text())
        assert marker["status"] == "done", stage
    assert (out / "report" / "report.html").exists() and (out / "accepted.jsonl").exists()
    assert (out / "export" / "alpaca" / "train.jsonl").exists()
    assert not (out / "finetune").exists()
    sources = {json.loads(line)["source"] for line in (out / "accepted.jsonl").read_text().splitlines()}
    assert "self-instruct" in sources and any(s.startswith(("evol:", "rule:")) for s in sources)

    # a rerun does nothing and sends nothing
    sent = server.count
    code, text = run_cli("run", str(config), "--out", str(out), "--no-progress")
    assert code == 0 and server.count == sent, text
    assert text.count("skipped") >= 6

    # a new filter threshold re-runs filter and every stage after it, not generate
    before = {s: (out / s / "stage.json").read_text() for s in ("generate", "filter", "export")}
    code, text = run_cli("run", str(config), "--out", str(out), "--no-progress", "--set", "filter.rouge_threshold=0.65")
    assert code == 0, text
    assert (out / "generate" / "stage.json").read_text() == before["generate"]
    assert (out / "filter" / "stage.json").read_text() != before["filter"]
    assert (out / "export" / "stage.json").read_text() != before["export"]
    assert "[generate] finished before with the same settings; skipped" in text


def test_resume_at_the_unfinished_stage(tmp_path: Path, make_server) -> None:
    server = make_server(reply=combined_reply())
    config = write_config(tmp_path / "p.yaml", server.url)
    out = tmp_path / "run"
    # stop generate by budget: the run ends cleanly with generate unfinished and nothing after it
    code, text = run_cli("run", str(config), "--out", str(out), "--no-progress", "--set", "llm.max_requests=3")
    assert code == 0 and "budget" in text, text
    assert json.loads((out / "generate" / "stage.json").read_text())["status"] == "running"
    assert not (out / "filter").exists()
    pipeline = load_pipeline(config, out=str(out))
    assert plan(pipeline)[0]["action"] == "resume"
    code, text = run_cli("run", str(config), "--out", str(out), "--no-progress")
    assert code == 0, text
    assert json.loads((out / "export" / "stage.json").read_text())["status"] == "done"


@pytest.mark.parametrize(("override", "key"), [
    ("generate.num_instrucions=3", "generate.num_instrucions"),
    ("generate.num_instructions=many", "generate.num_instructions"),
    ("generate.num_instructions=0", "generate.num_instructions"),
    ("filter.rouge_threshold=1.5", "filter.rouge_threshold"),
    ("export.split=oops", "export.split"),
    ("llm.concurrency=0", "llm.concurrency"),
    ("finetune.enabled=maybe", "finetune.enabled"),
    ("finetune.data=x.jsonl", "finetune.data"),
    ("eval.base=false", "eval.base"),  # once accepted and silently ignored
    ("export.formats=[alpaca,chatml]", "export.formats"),
    ("colour=blue", "colour"),
])
def test_config_errors_name_the_key(tmp_path: Path, override: str, key: str) -> None:
    config = write_config(tmp_path / "p.yaml", "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError) as info:
        load_pipeline(config, [override])
    assert key in str(info.value)


def test_dry_run_prints_plan_and_estimate(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path / "p.yaml", "http://127.0.0.1:9/v1",
                          llm={"base_url": ["http://127.0.0.1:9/v1"], "model": "m", "price_in": 1.0, "price_out": 2.0})
    main(["run", str(config), "--dry-run", "--json", "--out", str(tmp_path / "r"),
          "--set", "generate.num_instructions=100", "--set", "generate.instructions_per_request=5"])
    data = json.loads(capsys.readouterr().out)
    assert [s["stage"] for s in data["plan"]][:2] == ["generate", "filter"]
    assert data["plan"][5]["action"] == "off"
    # 100 kept of 5 per request at 50% acceptance: 40 proposal requests + 2 per instruction, + augment
    assert data["estimate"]["requests"] >= 240
    assert isinstance(data["estimate"]["cost_usd"], float) and data["estimate"]["cost_usd"] > 0
    assert not (tmp_path / "r").exists(), "a dry run writes nothing"


def test_init_scaffolds_a_runnable_project(tmp_path: Path) -> None:
    code, text = run_cli("init", str(tmp_path / "proj"), "--lang", "zh", "--domain", "medical")
    assert code == 0, text
    seeds = (tmp_path / "proj" / "seeds.jsonl").read_text(encoding="utf-8").splitlines()
    assert 3 <= len(seeds) <= 8 and all("instances" in json.loads(s) for s in seeds)
    assert "`sftdata run --list-keys`" in (tmp_path / "proj" / "config.yaml").read_text(encoding="utf-8")
    pipeline = load_pipeline(tmp_path / "proj" / "config.yaml")
    assert pipeline.lang == "zh" and pipeline.seeds == [str(tmp_path / "proj" / "seeds.jsonl")]
    code, text = run_cli("init", str(tmp_path / "proj"))
    assert code == 2 and "--force" in text
