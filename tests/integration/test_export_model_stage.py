"""`sftdata run` with `export_model: {}` after finetune: a tiny Llama (ChatML BPE tokenizer) is
tuned on the generated data, merged, written as a q8_0 GGUF with its Modelfile and verified, all
inside the run directory; the GGUF then serves `sftdata llm chat`. Loopback server, no real model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_pipeline import ROOT, combined_reply, write_config

from sftdata.finetune.tiny import bpe_tokenizer, tiny_llama_dir


def run_cli(*args: str) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-c", "from sftdata.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    return proc.returncode, proc.stdout + proc.stderr


def model_chat_template(model: Path) -> str:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model).chat_template


def test_run_exports_the_tuned_model_as_gguf(tmp_path: Path, make_server, monkeypatch) -> None:
    import gguf

    monkeypatch.setenv("SFTDATA_HOME", str(tmp_path / "home"))  # the GGUF's dequantized cache
    model = tiny_llama_dir(tmp_path / "tiny", bpe_tokenizer(), hidden=64)
    server = make_server(reply=combined_reply())
    finetune = {"base_model": str(model), "max_steps": 2, "max_len": 128, "batch_tokens": 512}
    config = write_config(tmp_path / "p.yaml", server.url, finetune=finetune, export_model={})
    out = tmp_path / "run"
    code, text = run_cli("run", str(config), "--out", str(out), "--no-progress")
    assert code == 0, text
    marker = json.loads((out / "export_model" / "stage.json").read_text())
    assert marker["status"] == "done"
    summary = json.loads((out / "export_model" / "export.json").read_text())
    gguf_file = out / "export_model" / "finetune.q8_0.gguf"
    assert summary["files"] == [str(gguf_file)] and summary["source"] == str(out / "finetune")
    reader = gguf.GGUFReader(gguf_file)
    assert reader.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q8_0
    assert reader.fields["tokenizer.chat_template"].contents() == model_chat_template(model)
    assert len(reader.tensors) == 2 * 9 + 3
    rows = summary["verify"]["rows"]  # verified on the held-out split fine-tuning kept
    assert summary["verify"]["data"] == [str(out / "finetune" / "eval.jsonl")]
    assert rows[1]["tokenizer_match"] == 1.0 and rows[1]["agreement"] >= 0.9
    modelfile = (out / "export_model" / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./finetune.q8_0.gguf") and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert (out / "export_model" / "hf" / "model.safetensors").is_file()
    # a rerun skips it; the exported file answers through the local backend
    code, text = run_cli("run", str(config), "--out", str(out), "--no-progress")
    assert code == 0 and "export_model" in text, text
    code, reply = run_cli("llm", "chat", "Hello", "--model", str(gguf_file), "--max-tokens", "4")
    assert code == 0, reply
