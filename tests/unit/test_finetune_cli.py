"""`sftdata finetune DATA --out DIR` and `sftdata finetune merge ADAPTER --out DIR` (tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sftdata.cli import main
from sftdata.finetune.tiny import byte_tokenizer, tiny_llama_dir


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return tiny_llama_dir(tmp_path_factory.mktemp("tiny") / "model", byte_tokenizer(), initializer_range=0.2)


@pytest.fixture
def data_file(tmp_path) -> Path:
    path = tmp_path / "train.jsonl"  # messages format, as `sftdata export --format messages` writes
    rows = [{"messages": [{"role": "user", "content": f"Spell {w}."},
                          {"role": "assistant", "content": " ".join(w)}]} for w in ["cat", "dog", "owl", "bee"] * 3]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def test_finetune_then_merge(tiny_dir, data_file, tmp_path, capsys):
    out = tmp_path / "adapter"
    code, stdout, err = run_cli(["finetune", str(data_file), "--out", str(out), "--base-model", str(tiny_dir),
                                 "--max-steps", "3", "--max-len", "64", "--batch-tokens", "128", "--lr", "1e-2",
                                 "--precision", "fp32", "--no-progress", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["steps"] == 3 and summary["method"] == "lora" and summary["packing"] is True
    assert summary["examples"] + summary["eval_examples"] == 12
    assert (out / "adapter_model.safetensors").is_file()

    merged = tmp_path / "merged"
    code, stdout, err = run_cli(["finetune", "merge", str(out), "--out", str(merged), "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["method"] == "lora"
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_dir), str(out))
        plain = AutoModelForCausalLM.from_pretrained(merged)
        assert not any("lora" in name for name, _ in plain.named_parameters())
        torch.testing.assert_close(plain(input_ids=ids).logits, with_adapter(input_ids=ids).logits,
                                   rtol=1e-4, atol=1e-5)
    assert (merged / "tokenizer.json").is_file() and (merged / "chat_template.jinja").is_file()


def test_zero_trainable_tokens_exits_2_naming_the_line(tiny_dir, data_file, tmp_path, capsys):
    with open(data_file, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"instruction": "Say nothing.", "input": "", "output": ""}) + "\n")
    code, _, err = run_cli(["finetune", str(data_file), "--out", str(tmp_path / "o"), "--base-model",
                            str(tiny_dir), "--no-progress"], capsys)
    assert code == 2
    assert f"{data_file}:13:" in err and "zero trainable tokens" in err and "Traceback" not in err


@pytest.mark.parametrize("args, option", [
    (["--method", "prefix", "--packing"], "--packing"),
    (["--batch-tokens", "16", "--max-len", "64"], "--batch-tokens"),
    (["--eval-split", "1.5"], "--eval-split"),
    (["--lora-r", "0"], "--lora-r"),
])
def test_bad_options_exit_2_naming_the_option(tiny_dir, data_file, tmp_path, capsys, args, option):
    code, _, err = run_cli(["finetune", str(data_file), "--out", str(tmp_path / "o"), "--base-model",
                            str(tiny_dir), *args], capsys)
    assert code == 2 and option in err, err


def test_missing_base_model_and_bad_adapter(data_file, tmp_path, capsys):
    code, _, err = run_cli(["finetune", str(data_file), "--out", str(tmp_path / "o"), "--base-model",
                            str(tmp_path)], capsys)
    assert code == 2 and "--base-model" in err and "config.json" in err
    code, _, err = run_cli(["finetune", "merge", str(tmp_path), "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and "adapter_config.json" in err


def test_prompt_tuning_adapter_cannot_be_merged(tiny_dir, data_file, tmp_path, capsys):
    out = tmp_path / "prompt"
    code, _, err = run_cli(["finetune", str(data_file), "--out", str(out), "--base-model", str(tiny_dir),
                            "--method", "prompt", "--max-steps", "1", "--max-len", "64",
                            "--batch-tokens", "128", "--no-progress"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["finetune", "merge", str(out), "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and "cannot be merged" in err


def test_help_lists_both_actions(capsys):
    code, out, _ = run_cli(["finetune", "--help"], capsys)
    assert code == 0 and "train" in out and "merge" in out
    code, out, _ = run_cli(["finetune", "train", "--help"], capsys)
    assert code == 0 and "--batch-tokens" in out and "--packing / --no-packing" in out


def test_eval_data_file_replaces_the_split_and_missing_data_is_exit_2(tiny_dir, data_file, tmp_path, capsys):
    held = tmp_path / "eval.jsonl"
    held.write_text(json.dumps({"instruction": "Spell fox.", "output": "f o x"}) + "\n", encoding="utf-8")
    code, stdout, err = run_cli(["finetune", str(data_file), "--eval-data", str(held), "--out", str(tmp_path / "o"),
                                 "--base-model", str(tiny_dir), "--max-steps", "1", "--max-len", "64",
                                 "--batch-tokens", "128", "--no-progress", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["examples"] == 12 and summary["eval_examples"] == 1 and summary["eval_loss"] > 0
    code, _, err = run_cli(["finetune", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o2"),
                            "--base-model", str(tiny_dir)], capsys)
    assert code == 2 and "nope.jsonl: no such file" in err


def test_dpo_from_the_cli_stops_resumes_and_names_bad_options(tiny_dir, tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"instruction": f"Spell {w}.", "input": "", "chosen": " ".join(w), "rejected": w[::-1]}  # LLaMA-Factory
            for w in ["cat", "dog", "owl", "bee", "ant", "elk"]]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "dpo"
    common = ["finetune", "train", str(pairs), "--out", str(out), "--base-model", str(tiny_dir), "--method", "dpo",
              "--max-len", "64", "--batch-tokens", "128", "--epochs", "2", "--eval-split", "0", "--lr", "1e-2",
              "--precision", "fp32", "--no-progress"]
    code, stdout, err = run_cli(common + ["--stop-after", "1"], capsys)
    assert code == 0 and "continue with --resume" in stdout, err
    code, stdout, err = run_cli(common + ["--resume", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["method"] == "dpo" and summary["pairs"] == 6 and summary["steps"] > 1
    code, _, err = run_cli(common + ["--beta", "0"], capsys)
    assert code == 2 and "--beta" in err
