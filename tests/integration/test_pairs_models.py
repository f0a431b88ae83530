"""`sftdata pairs --candidate-adapter` and `--rank-by reward`, `sftdata judge --reward-model`, on a tiny
random Llama: an SFT adapter and a reward model trained by `sftdata finetune` in the test, the adapter
answering on its own base whatever the run's LLM is, and the response cache telling adapters apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_cli

from sftdata.finetune.tiny import BOS_TEMPLATE, byte_tokenizer, tiny_llama_dir

WORDS = ["cat", "dog", "owl", "bee"]
TINY = ["--max-len", "64", "--batch-tokens", "128", "--precision", "fp32", "--no-progress", "--eval-split", "0"]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny base, an SFT adapter on it and a reward model on it (each trained in a few steps)."""
    root = tmp_path_factory.mktemp("models")
    base = tiny_llama_dir(root / "base", byte_tokenizer(BOS_TEMPLATE), initializer_range=0.2)
    sft_data = write(root / "sft.jsonl", [{"instruction": f"Spell {w}.", "input": "", "output": " ".join(w)}
                                          for w in WORDS * 2])
    pairs = write(root / "pairs.jsonl", [{"instruction": f"Spell {w}.", "input": "", "chosen": " ".join(w),
                                          "rejected": w[::-1]} for w in WORDS * 2])
    from sftdata.cli import main

    for data, out, method in ((sft_data, root / "sft", "lora"), (pairs, root / "rm", "reward")):
        try:
            main(["finetune", "train", str(data), "--out", str(out), "--base-model", str(base), "--method", method,
                  "--max-steps", "3", "--lr", "1e-2", *TINY])
        except SystemExit as exc:
            assert not exc.code, f"finetune --method {method} failed"
    return {"base": base, "sft": root / "sft", "rm": root / "rm"}


def test_pairs_candidate_adapter_ranked_by_reward_model(models, tmp_path, capsys):
    records = write(tmp_path / "records.jsonl", [{"instruction": f"Spell {w}.", "input": "", "output": w[::-1]}
                                                 for w in WORDS])
    out = tmp_path / "p"
    # the run's LLM is an endpoint that is not there: the adapter must answer locally, on its own base
    code, stdout, err = run_cli(["pairs", str(records), "--out", str(out), "--candidate-adapter", str(models["sft"]),
                                 "--rank-by", "reward", "--reward-model", str(models["rm"]), "--max-tokens", "6",
                                 "--base-url", "http://127.0.0.1:9/v1", "--model", "absent", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["candidates_added"] == len(WORDS) and summary["rank_by"] == "reward"
    assert summary["pairs"] + summary["rejected"] == len(WORDS) and summary["pairs"] >= 1
    for pair in read(out / "pairs.jsonl"):
        sides = pair["provenance"]["chosen"], pair["provenance"]["rejected"]
        assert {s["source"] for s in sides} == {"record:import", f"adapter:{models['sft']}"}
        # ranked by the reward model: the chosen side scored higher, the margin is the difference
        assert pair["margin"] == pytest.approx(sides[0]["score"] - sides[1]["score"], abs=1e-5) and pair["margin"] > 0
    assert (out / "export" / "trl" / "train.jsonl").exists()


def test_pairs_rank_by_reward_needs_the_reward_model(tmp_path, capsys):
    records = write(tmp_path / "r.jsonl", [{"instruction": "Spell cat.", "input": "", "output": "c a t"}])
    code, _, err = run_cli(["pairs", str(records), "--out", str(tmp_path / "p"), "--rank-by", "reward"], capsys)
    assert code == 2 and "--reward-model" in err


def test_judge_with_a_reward_model_scores_every_record(models, tmp_path, capsys):
    from sftdata.core.records import read_records
    from sftdata.finetune.reward import score_with_reward_model

    rows = [{"instruction": f"Spell {w}.", "input": "", "output": out} for w in WORDS for out in (" ".join(w), w[::-1])]
    records = write(tmp_path / "records.jsonl", rows)
    code, stdout, err = run_cli(["judge", str(records), "--out", str(tmp_path / "j"), "--reward-model",
                                 str(models["rm"]), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["records"] == summary["judged"] == len(rows)
    judged = list(read_records(tmp_path / "j" / "accepted.jsonl"))
    assert [r.output for r in judged] == [r["output"] for r in rows]  # input order, none dropped
    expected = score_with_reward_model(read_records(records), models["rm"])
    assert [r.meta["judge"]["reward"] for r in judged] == [r.meta["judge"]["reward"] for r in expected]
    assert len({r.meta["judge"]["reward"] for r in judged}) > 1
    # pairs read the rewards back from meta.judge without the model
    code, stdout, err = run_cli(["pairs", str(tmp_path / "j" / "accepted.jsonl"), "--out", str(tmp_path / "p"),
                                 "--rank-by", "meta", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["pairs"] == len(WORDS), err

    code, _, err = run_cli(["judge", str(records), "--out", str(tmp_path / "j2"), "--reward-model",
                            str(models["sft"])], capsys)
    assert code == 2 and "not a reward model" in err


def test_the_response_cache_tells_an_adapter_from_its_base(models, tmp_path):
    from sftdata.llm.base import Request
    from sftdata.llm.client import LLMConfig, make_llm

    request = Request.chat("Spell cat.", temperature=0.0, max_tokens=4, seed=0)
    sent = []
    for adapter in (None, str(models["sft"]), None):
        llm = make_llm(LLMConfig(model=str(models["base"]), adapter=adapter), cache_path=tmp_path / "cache.sqlite")
        llm.complete_sync([request])
        sent.append(llm.stats.sent)
    assert sent == [1, 1, 0]  # the adapter's answer is not the base's cached one; the base's second ask is
