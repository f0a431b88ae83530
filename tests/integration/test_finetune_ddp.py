"""The same `sftdata finetune` command under `torchrun --nproc_per_node 2` (DDP, gloo on CPU).

Two processes with one batch each per step must train exactly what one process does with
``--grad-accum 2``: the same batches, the loss normalized by the tokens of the whole window.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sftdata.finetune.tiny import byte_tokenizer, tiny_llama_dir

VENV_BIN = Path(sys.executable).parent


def finetune_args(data: Path, out: Path, model: Path, grad_accum: int) -> list[str]:
    return ["finetune", str(data), "--out", str(out), "--base-model", str(model), "--max-steps", "2",
            "--max-len", "48", "--batch-tokens", "48", "--grad-accum", str(grad_accum), "--lr", "1e-2",
            "--eval-split", "0.25", "--precision", "fp32", "--no-progress", "--json"]


def run(cmd: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout[proc.stdout.index("{"):])


@pytest.mark.timeout(900)
def test_two_process_ddp_matches_one_process_with_grad_accum(tmp_path):
    model = tiny_llama_dir(tmp_path / "model", byte_tokenizer(), initializer_range=0.2)
    data = tmp_path / "train.jsonl"
    rows = [{"instruction": f"Echo {w}.", "output": f"{w}!"} for w in
            ["sun", "moon", "star", "rain", "snow", "wind", "leaf", "tree", "rock", "sand", "lake", "hill"]]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    ddp = run([str(VENV_BIN / "torchrun"), "--standalone", "--nproc_per_node", "2",
               str(VENV_BIN / "sftdata"), *finetune_args(data, tmp_path / "ddp", model, grad_accum=1)])
    single = run([str(VENV_BIN / "sftdata"), *finetune_args(data, tmp_path / "one", model, grad_accum=2)])

    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert ddp["steps"] == single["steps"] == 2
    assert ddp["trained_tokens"] == single["trained_tokens"]
    assert ddp["train_loss"] == pytest.approx(single["train_loss"], rel=1e-5)
    assert ddp["eval_loss"] == pytest.approx(single["eval_loss"], rel=1e-5)
    got = load_file(tmp_path / "ddp" / "adapter_model.safetensors")
    want = load_file(tmp_path / "one" / "adapter_model.safetensors")
    assert got.keys() == want.keys()
    moved = 0
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-6)
        moved += "lora_B" in key and bool(want[key].abs().sum() > 0)  # B starts at zero: it trained
    assert moved
