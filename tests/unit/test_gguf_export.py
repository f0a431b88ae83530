"""GGUF export of a tiny random Llama: the file's metadata and tensors, the q/k permutation
round trip through transformers' GGUF loader, errors, and the Ollama Modelfile. Fast: no real model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sftdata.core.errors import ConfigError
from sftdata.export_model.config import ExportModelConfig
from sftdata.export_model.gguf_writer import permute_for_llama_cpp, write_gguf
from sftdata.export_model.ollama import modelfile
from sftdata.export_model.stage import export_model
from sftdata.export_model.verify import load_gguf
from sftdata.finetune.tiny import CHATML, bpe_tokenizer, tiny_llama_dir


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return tiny_llama_dir(tmp_path_factory.mktemp("tiny"), bpe_tokenizer(), hidden=64)


def _field(reader, key):
    return reader.fields[key].contents()


def test_gguf_metadata_tokenizer_and_tensors(tiny_dir, tmp_path):
    import gguf

    summary = write_gguf(tiny_dir, tmp_path / "tiny.q8_0.gguf", "q8_0")
    reader = gguf.GGUFReader(tmp_path / "tiny.q8_0.gguf")
    config = json.loads((tiny_dir / "config.json").read_text())
    assert _field(reader, "general.architecture") == "llama"
    assert _field(reader, "llama.context_length") == config["max_position_embeddings"]
    assert _field(reader, "llama.embedding_length") == 64
    assert _field(reader, "llama.block_count") == 2
    assert _field(reader, "llama.attention.head_count_kv") == 2
    assert _field(reader, "tokenizer.ggml.model") == "gpt2"
    tokens = _field(reader, "tokenizer.ggml.tokens")
    assert len(tokens) == config["vocab_size"] and tokens[:3] == ["<unk>", "<|im_start|>", "<|im_end|>"]
    assert len(_field(reader, "tokenizer.ggml.merges")) == summary["merges"] > 0
    assert _field(reader, "tokenizer.ggml.token_type")[:4] == [3, 3, 3, 1]  # special added tokens: control
    assert _field(reader, "tokenizer.ggml.bos_token_id") == 1 and _field(reader, "tokenizer.ggml.eos_token_id") == 2
    assert _field(reader, "tokenizer.chat_template") == CHATML
    assert _field(reader, "general.file_type") == gguf.LlamaFileType.MOSTLY_Q8_0
    # 9 tensors a layer, the embedding, the final norm and the (untied) output layer
    assert len(reader.tensors) == summary["tensors"] == 2 * 9 + 3
    kinds = {t.name: t.tensor_type.name for t in reader.tensors}
    assert kinds["blk.0.attn_q.weight"] == "Q8_0" and kinds["blk.0.attn_norm.weight"] == "F32"


def test_q4_0_keeps_embedding_and_output_at_q8_0(tiny_dir, tmp_path):
    import gguf

    write_gguf(tiny_dir, tmp_path / "tiny.q4_0.gguf", "q4_0")
    kinds = {t.name: t.tensor_type.name for t in gguf.GGUFReader(tmp_path / "tiny.q4_0.gguf").tensors}
    assert kinds["blk.1.ffn_down.weight"] == "Q4_0"
    assert kinds["token_embd.weight"] == "Q8_0" and kinds["output.weight"] == "Q8_0"


def test_f32_gguf_reads_back_through_transformers_with_the_same_logits(tiny_dir, tmp_path):
    """llama.cpp's q/k permutation, undone by transformers on load: exact weights, same logits."""
    from transformers import AutoModelForCausalLM

    write_gguf(tiny_dir, tmp_path / "tiny.f32.gguf", "f32")
    original = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    loaded, tokenizer = load_gguf(tmp_path / "tiny.f32.gguf")
    ids = torch.tensor([tokenizer("Hello, GGUF world!").input_ids])
    with torch.no_grad():
        assert torch.allclose(original(ids).logits, loaded(ids).logits, atol=1e-5)
    quantized, _ = load_gguf(write_gguf(tiny_dir, tmp_path / "tiny.q8_0.gguf", "q8_0")["file"])
    with torch.no_grad():
        assert (original(ids).logits.argmax(-1) == quantized(ids).logits.argmax(-1)).float().mean() > 0.9


def test_permutation_interleaves_rotary_halves_per_head():
    rows = np.arange(8, dtype=np.float32)[:, None]  # 2 heads of 4 rows: halves (0,1 | 2,3)
    assert permute_for_llama_cpp(rows, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_unsupported_architecture_is_a_config_error_naming_it(tiny_dir, tmp_path):
    other = tmp_path / "gpt2"
    other.mkdir()
    config = json.loads((tiny_dir / "config.json").read_text())
    config["architectures"] = ["GPT2LMHeadModel"]
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="GPT2LMHeadModel"):
        export_model(str(other), tmp_path / "out", ExportModelConfig(verify=False))


def test_bad_quant_is_rejected_before_any_work(tiny_dir, tmp_path):
    with pytest.raises(ConfigError, match="llama-quantize"):
        export_model(str(tiny_dir), tmp_path / "out", ExportModelConfig(quant=["q4_k_m"], verify=False))
    assert not (tmp_path / "out").exists()


def test_export_writes_modelfile_usage_and_summary(tiny_dir, tmp_path):
    summary = export_model(str(tiny_dir), tmp_path / "out", ExportModelConfig(quant=["f16", "q8_0"], verify=False),
                           )
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("*.gguf")) == [f"{tiny_dir.name}.f16.gguf", f"{tiny_dir.name}.q8_0.gguf"]
    text = (out / "Modelfile").read_text()
    assert text.startswith(f"FROM ./{tiny_dir.name}.f16.gguf") and 'PARAMETER stop "<|im_end|>"' in text
    assert "<|im_start|>{{ .Role }}" in text
    usage = (out / "USAGE.md").read_text()
    assert "ollama create" in usage and f"--model {tiny_dir.name}.f16.gguf" in usage
    assert json.loads((out / "export.json").read_text())["files"] == summary["files"]


def test_modelfile_for_llama3_and_unknown_formats():
    llama3 = modelfile("m.gguf", "{{ '<|start_header_id|>' + role + '<|end_header_id|>' }}", 131072, {"temperature": 0.6})
    assert 'PARAMETER stop "<|eot_id|>"' in llama3 and "PARAMETER num_ctx 4096" in llama3
    assert "PARAMETER temperature 0.6" in llama3
    plain = modelfile("m.gguf", "{{ bos_token }}{{ content }}", 2048, {})
    assert "TEMPLATE" not in plain and "stop" not in plain


def test_local_backend_serves_an_exported_gguf(tiny_dir, tmp_path, capsys, monkeypatch):
    """`--model FILE.gguf`: dequantized once into $SFTDATA_HOME/models/gguf, then served like a directory."""
    from cli_helpers import run_cli

    monkeypatch.setenv("SFTDATA_HOME", str(tmp_path / "home"))
    f32 = write_gguf(tiny_dir, tmp_path / "tiny.f32.gguf", "f32")["file"]
    chat = ["llm", "chat", "Hello, GGUF world!", "--max-tokens", "12"]
    code, from_dir, err = run_cli([*chat, "--model", str(tiny_dir)], capsys)
    assert code == 0 and from_dir.strip(), err
    code, from_gguf, err = run_cli([*chat, "--model", f32], capsys)
    assert code == 0, err
    assert from_gguf == from_dir  # the same weights: the same greedy reply
    cached = list((tmp_path / "home" / "models" / "gguf").iterdir())
    assert [p.name[:len("tiny.f32-")] for p in cached] == ["tiny.f32-"]
    built = (cached[0] / "model.safetensors").stat().st_mtime_ns
    q8 = write_gguf(tiny_dir, tmp_path / "tiny.q8_0.gguf", "q8_0")["file"]
    code, from_q8, err = run_cli([*chat, "--model", q8], capsys)
    assert code == 0 and from_q8.strip(), err
    code, again, _ = run_cli([*chat, "--model", f32], capsys)
    assert again == from_dir and (cached[0] / "model.safetensors").stat().st_mtime_ns == built  # not rebuilt
    assert len(list((tmp_path / "home" / "models" / "gguf").iterdir())) == 2


def test_a_gguf_transformers_cannot_read_is_a_config_error(tmp_path, capsys, monkeypatch):
    from cli_helpers import run_cli

    monkeypatch.setenv("SFTDATA_HOME", str(tmp_path / "home"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 60)
    code, _, err = run_cli(["llm", "chat", "hi", "--model", str(bad)], capsys)
    assert code == 2 and "broken.gguf" in err and "cannot load this GGUF" in err and "--model" in err
    assert "Traceback" not in err
    assert not list((tmp_path / "home" / "models" / "gguf").glob("broken*"))  # no half-built cache


def test_finetune_base_model_may_be_a_gguf(tiny_dir, tmp_path, monkeypatch):
    from sftdata.finetune.runtime import load_base

    monkeypatch.setenv("SFTDATA_HOME", str(tmp_path / "home"))
    path = write_gguf(tiny_dir, tmp_path / "tiny.f32.gguf", "f32")["file"]
    model, tokenizer, recorded = load_base(path)
    assert recorded == str(tmp_path / "tiny.f32.gguf")  # the adapter records the file, not the cache
    assert model.config.hidden_size == 64 and tokenizer.chat_template == CHATML
