"""The tokenizer half of a GGUF: ``tokenizer.ggml.*`` and the chat template, from a HF tokenizer.

llama.cpp runs byte-level BPE tokenizers as ``gpt2``: the vocabulary in id order, the merges as
"a b" strings, a type per token (normal; control for special added tokens like ``<|im_end|>``;
user-defined for plain added tokens; unused for the padding rows of an embedding larger than the
vocabulary), the special ids, and ``tokenizer.ggml.pre``: which pre-tokenizer regex to split
text with. llama.cpp recognises the pre-tokenizer by a hash of the tokenizer's output; here it is
named from the vocabulary (SmolLM, Llama 3, Qwen2), else ``default`` with a warning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError

NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5


def pre_tokenizer_name(config: dict[str, Any], vocab: dict[str, int]) -> str:
    if config.get("model_type") == "qwen2":
        return "qwen2"
    if "<|begin_of_text|>" in vocab:
        return "llama-bpe"
    if "<repo_name>" in vocab and "<jupyter_start>" in vocab:  # the SmolLM / SmolLM2 vocabulary
        return "smollm"
    return "default"


def _tokenizer_json(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise ConfigError(f"{model_dir}: no tokenizer.json (a fast tokenizer) to write into the GGUF; "
                          "SentencePiece-only tokenizers need llama.cpp's convert_hf_to_gguf.py", "ADAPTER_OR_MODEL")
    data = json.loads(path.read_text(encoding="utf-8"))
    kind = (data.get("model") or {}).get("type")
    if kind != "BPE" or "ByteLevel" not in json.dumps(data.get("pre_tokenizer") or data.get("decoder")):
        raise ConfigError(f"{path}: a {kind} tokenizer; this exporter writes byte-level BPE (gpt2) "
                          "tokenizers only; use llama.cpp's convert_hf_to_gguf.py", "ADAPTER_OR_MODEL")
    return data


def vocabulary(model_dir: Path, vocab_size: int) -> tuple[list[str], list[int], list[str], dict[str, int]]:
    """(tokens by id, token types, merges, token -> id) padded to the embedding's ``vocab_size``."""
    data = _tokenizer_json(model_dir)
    ids: dict[str, int] = dict(data["model"]["vocab"])
    kinds = {}
    for added in data.get("added_tokens", []):
        ids[added["content"]] = added["id"]
        kinds[added["id"]] = CONTROL if added.get("special") else USER_DEFINED
    by_id = {i: token for token, i in ids.items()}
    size = max(vocab_size, max(by_id) + 1)
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(size)]
    types = [kinds.get(i, NORMAL if i in by_id else UNUSED) for i in range(size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"].get("merges", [])]
    if not merges:  # GGUF has no empty arrays, and llama.cpp refuses a gpt2 vocabulary without merges
        raise ConfigError(f"{model_dir / 'tokenizer.json'}: a BPE tokenizer without merges cannot be written "
                          "as a llama.cpp gpt2 vocabulary", "ADAPTER_OR_MODEL")
    return tokens, types, merges, ids


def add_tokenizer(writer: Any, model_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Write the tokenizer keys; returns what went in (for the export summary)."""
    from transformers import AutoTokenizer

    tokens, types, merges, ids = vocabulary(model_dir, config["vocab_size"])
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    pre = pre_tokenizer_name(config, ids)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    special = {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id,
               "unk": tokenizer.unk_token_id, "pad": tokenizer.pad_token_id}
    if special["bos"] is None:
        special["bos"] = config.get("bos_token_id")
    if special["pad"] is None:
        special["pad"] = special["eos"]  # what sftdata's loaders use too
    for key, setter in (("bos", writer.add_bos_token_id), ("eos", writer.add_eos_token_id),
                        ("unk", writer.add_unk_token_id), ("pad", writer.add_pad_token_id)):
        if special[key] is not None:
            setter(int(special[key]))
    probe = tokenizer("a")["input_ids"]
    writer.add_add_bos_token(bool(probe) and probe[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(False)
    template = tokenizer.chat_template
    if isinstance(template, str) and template:
        writer.add_chat_template(template)
    return {"tokenizer_pre": pre, "vocab": len(tokens), "merges": len(merges),
            "special_ids": special, "chat_template": bool(template)}
