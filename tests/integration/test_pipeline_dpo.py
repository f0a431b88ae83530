"""`sftdata run` with `pairs: {}` and `dpo: {}` on a tiny random Llama (the run's local llm.model):
records -> export -> SFT adapter -> pairs (the base's and the SFT adapter's answers besides the
records', ranked by the scores in meta.judge) -> DPO on the pairs export with the SFT adapter as
reference -> eval (generation metrics of base / SFT / DPO and preference accuracy on held-out pairs);
then the hash chain: a rerun skips everything, a new dpo.beta re-runs dpo and eval only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sftdata.cli import main
from sftdata.core.errors import ConfigError
from sftdata.finetune.tiny import BOS_TEMPLATE, byte_tokenizer, tiny_llama_dir
from sftdata.pipeline import load_pipeline

WORDS = ["cat", "dog", "owl", "bee", "ant", "elk", "yak", "emu"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return tiny_llama_dir(tmp_path_factory.mktemp("tiny") / "model", byte_tokenizer(BOS_TEMPLATE),
                          initializer_range=0.2)


def write_records(path: Path) -> Path:
    """Two answers per instruction, judged: the spelled-out word (9) and the reversed one (2)."""
    rows = []
    for word in WORDS:
        for output, score in ((" ".join(word), 9), (word[::-1], 2)):
            rows.append({"instruction": f"Spell {word}.", "input": "", "output": output, "lang": "en",
                         "meta": {"judge": {"rubric": "score", "score": score}}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_config(path: Path, model: Path, records: Path) -> Path:
    small = {"max_len": 64, "batch_tokens": 128, "precision": "fp32", "epochs": 1}
    config = {
        "name": "dpo", "lang": "en", "seed": 0, "seeds": str(records),
        "llm": {"model": str(model), "batch_size": 8},
        "generate": {"enabled": False}, "filter": {"enabled": False}, "clean": {"enabled": False},
        "augment": {"enabled": False},
        "export": {"formats": ["messages"], "split": [0.5, 0.25, 0.25]},
        "finetune": {**small, "max_steps": 2, "lr": 1e-2},
        "pairs": {"rank_by": "meta", "max_tokens": 6, "split": "0.5,0.25,0.25"},
        "dpo": {**small, "lr": 1e-3},
        "eval": {"max_new_tokens": 4, "max_len": 64, "limit": 2},
        "report": {"enabled": False},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run(*args: str, capsys) -> tuple[int, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_run_with_pairs_and_dpo_end_to_end(tiny_dir: Path, tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path / "run.yaml", tiny_dir, write_records(tmp_path / "records.jsonl"))
    out = tmp_path / "run"
    code, text = run("run", str(config), "--out", str(out), "--no-progress", capsys=capsys)
    assert code == 0, text
    for stage in ("export", "finetune", "pairs", "dpo", "eval"):
        assert json.loads((out / stage / "stage.json").read_text())["status"] == "done", stage

    pairs = [json.loads(line) for line in (out / "pairs" / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == len(WORDS)  # the spelled word (9) over the reversed one (2), every instruction
    assert all(p["chosen"] == " ".join(p["prompt"][6:-1]) and p["margin"] == 7.0 for p in pairs)
    stats = json.loads((out / "pairs" / "stats.json").read_text())
    # one answer of the base and one of the SFT adapter were asked for per instruction (unscored under meta)
    assert 0 < stats["candidates_added"] <= 2 * len(WORDS)

    info = json.loads((out / "dpo" / "sftdata_finetune.json").read_text())
    assert info["method"] == "dpo" and info["reference"] == str(out / "finetune")
    assert Path(info["base_model_dir"]).resolve() == tiny_dir.resolve()
    train = (out / "pairs" / "export" / "trl" / "train.jsonl").read_text().splitlines()
    assert json.loads((out / "dpo" / "metrics.json").read_text())["pairs"] == len(train)

    preference = json.loads((out / "eval" / "preference" / "eval.json").read_text())
    assert [m["label"] for m in preference["models"]][0] == "base" and len(preference["models"]) == 3
    assert all("reward_accuracy" in m for m in preference["models"][1:])
    generation = json.loads((out / "eval" / "eval.json").read_text())
    assert len(generation["models"]) == 3  # base, SFT adapter, DPO adapter

    # the hash chain: a rerun skips every stage; a new beta re-runs dpo and eval, not pairs
    markers = {s: (out / s / "stage.json").read_text() for s in ("finetune", "pairs", "dpo", "eval")}
    code, text = run("run", str(config), "--out", str(out), "--no-progress", capsys=capsys)
    assert code == 0 and text.count("same settings; skipped") == 5, text
    code, text = run("run", str(config), "--out", str(out), "--no-progress", "--set", "dpo.beta=0.5",
                     capsys=capsys)
    assert code == 0, text
    assert (out / "pairs" / "stage.json").read_text() == markers["pairs"]
    assert (out / "dpo" / "stage.json").read_text() != markers["dpo"]
    assert (out / "eval" / "stage.json").read_text() != markers["eval"]
    assert json.loads((out / "eval" / "preference" / "eval.json").read_text())["beta"] == 0.5


@pytest.mark.parametrize(("override", "key"), [("dpo.method=lora", "dpo.method"), ("dpo.data=x.jsonl", "dpo.data"),
                                               ("dpo.loss=kto", "dpo.loss"), ("pairs.rank_by=vibes", "pairs.rank_by"),
                                               ("dpo.resume=true", "dpo.resume"), ("dpo.beta=0", "dpo.beta"),
                                               ("finetune.precision=fp64", "finetune.precision")])
def test_pairs_and_dpo_config_errors_name_the_key(tmp_path: Path, override: str, key: str) -> None:
    config = write_config(tmp_path / "run.yaml", tmp_path, write_records(tmp_path / "records.jsonl"))
    with pytest.raises(ConfigError) as info:
        load_pipeline(config, [override])
    assert key in str(info.value)


def test_an_interrupted_dpo_stage_continues_from_its_checkpoint_on_rerun(tiny_dir: Path, tmp_path: Path, capsys,
                                                                         monkeypatch) -> None:
    """Ctrl-C during the dpo stage's third step: the run stops (exit 130) with a checkpoint of two
    steps; the same command again skips the stages before and trains only the steps left."""
    import sftdata.finetune.pair_train as pair_train

    config = write_config(tmp_path / "run.yaml", tiny_dir, write_records(tmp_path / "records.jsonl"))
    raw = yaml.safe_load(config.read_text())
    raw["dpo"]["epochs"] = 3
    raw["eval"] = {"enabled": False}
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    out = tmp_path / "run"
    steps_run: list[int] = []
    interrupt = [True]
    real_step = pair_train.optimizer_step

    def optimizer_step(optimizer, params, step: int, *args: float) -> tuple[float, float]:  # once per step
        steps_run.append(step)
        if step == 2 and interrupt and interrupt.pop():
            raise KeyboardInterrupt  # a Ctrl-C in the middle of the third step, once
        return real_step(optimizer, params, step, *args)

    monkeypatch.setattr(pair_train, "optimizer_step", optimizer_step)
    code, text = run("run", str(config), "--out", str(out), "--no-progress", capsys=capsys)
    assert code == 130 and "interrupted at step 2" in text, text
    assert json.loads((out / "dpo" / "stage.json").read_text())["status"] == "running"
    import torch

    saved = torch.load(out / "dpo" / "checkpoint" / "state.pt", weights_only=False)
    assert saved["step"] == 2 and [t["step"] for t in saved["curves"]["train"]] == [1, 2]

    steps_run.clear()
    code, text = run("run", str(config), "--out", str(out), "--no-progress", capsys=capsys)
    assert code == 0, text
    assert all(f"[{stage}] finished before" in text for stage in ("export", "finetune", "pairs")), text
    metrics = json.loads((out / "dpo" / "metrics.json").read_text())
    total = metrics["steps"]
    assert total >= 4 and steps_run == list(range(2, total))  # only the steps left were trained
    curve = metrics["curves"]["train"]
    assert [t["step"] for t in curve] == list(range(1, total + 1))
    assert curve[:2] == saved["curves"]["train"]  # the first two steps are the interrupted run's own
    assert json.loads((out / "dpo" / "stage.json").read_text())["status"] == "done"


def test_dry_run_estimates_what_the_pairs_stage_asks(tiny_dir: Path, tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path / "run.yaml", tiny_dir, write_records(tmp_path / "records.jsonl"))
    args = ["run", str(config), "--out", str(tmp_path / "r"), "--dry-run"]
    # after a finetune stage, with no source named: one base sample and one SFT adapter answer per
    # instruction (the adapter's runs here), each of the three candidates scored by the judge
    code, text = run(*args, "--json", "--set", "pairs.rank_by=judge", "--set", "pairs.limit=5", capsys=capsys)
    assert code == 0, text
    pairs = json.loads(text)["estimate"]["stages"]["pairs"]
    assert (pairs["prompts"], pairs["candidates_per_prompt"]) == (5, 3)
    assert (pairs["candidate_requests"], pairs["local_adapter_generations"]) == (5, 5)
    assert 15 <= pairs["judge_requests"] <= 17  # one per candidate, and some retried
    assert pairs["requests"] == 5 + pairs["judge_requests"] and pairs["completion_tokens"] > 5 * 6
    # pairwise over 2 samples + another model + the record's own: 6 games in both orders per prompt
    code, text = run(*args, "--json", "--set", "pairs.rank_by=pairwise", "--set", "pairs.limit=5",
                     "--set", "pairs.candidates=2", "--set", "pairs.candidate_model=[other]", capsys=capsys)
    pairs = json.loads(text)["estimate"]["stages"]["pairs"]
    assert (pairs["candidate_requests"], pairs["local_adapter_generations"]) == (15, 0)
    assert 60 <= pairs["judge_requests"] <= 67
    # ranked by the scores the records hold: no judge request; one prompt per seed record (16) assumed
    code, text = run(*args, capsys=capsys)
    assert code == 0 and "pairs: requests 16, " in text and "judge_requests 0" in text, text
    assert not (tmp_path / "r").exists()
