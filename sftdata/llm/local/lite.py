"""Loading a Llama-architecture model directory for generation without importing transformers.

``import transformers`` plus its model and tokenizer classes costs 2-3 s of CPU before a single
weight is read (it pulls in torch.distributed, dynamo, sympy...). For ``sftdata llm chat`` that is
most of the start-up. The engine's lean forward (:mod:`.fast_llama`) needs only the weights and the
config, and the tokenizer is a ``tokenizers`` file plus a Jinja chat template, so for the common
case (a plain Llama-family checkpoint, no adapter) this module loads exactly that: safetensors,
``tokenizers`` and Jinja, in well under a second. Anything it does not cover (other architectures,
RoPE scaling, sharded or .bin weights, adapters) goes through transformers as before.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from .threads import one_thread

SUPPORTED_ROPE = (None, "default")


def unsupported_reason(directory: Path) -> str | None:
    """Why ``directory`` needs transformers to load (None when this module can load it)."""
    files = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    missing = [name for name in files if not (directory / name).is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    config = _read_json(directory / "config.json")
    if config.get("model_type") != "llama" or config.get("architectures", ["LlamaForCausalLM"]) != ["LlamaForCausalLM"]:
        return f"architecture {config.get('architectures')} is not a plain LlamaForCausalLM"
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type")) not in SUPPORTED_ROPE:
        return f"RoPE type {rope.get('rope_type', rope.get('type'))}"
    if (config.get("pretraining_tp") or 1) != 1 or config.get("sliding_window"):
        return "pretraining_tp or sliding window"
    if config.get("hidden_act", "silu") != "silu":
        return f"activation {config.get('hidden_act')}"
    if _chat_template(directory) is None:
        return "no chat template"
    return None


class LiteModel:
    """The weights (HF names) and config of a Llama checkpoint: what :class:`FastLlama` reads."""

    def __init__(self, directory: Path, dtype: torch.dtype) -> None:
        from safetensors.torch import load_file

        raw = _read_json(directory / "config.json")
        rope = raw.get("rope_parameters") or {}
        raw.setdefault("rope_theta", rope.get("rope_theta", 10000.0))
        raw.setdefault("head_dim", raw["hidden_size"] // raw["num_attention_heads"])
        raw.setdefault("num_key_value_heads", raw["num_attention_heads"])
        self.config = SimpleNamespace(**raw)
        with one_thread():
            self.weights = {name: t.to(dtype) for name, t in load_file(directory / "model.safetensors").items()}
        if "lm_head.weight" not in self.weights:  # tied embeddings
            self.weights["lm_head.weight"] = self.weights["model.embed_tokens.weight"]
        generation = directory / "generation_config.json"
        generation_config = _read_json(generation) if generation.is_file() else {}
        self.generation_config = SimpleNamespace(eos_token_id=generation_config.get("eos_token_id",
                                                                                    raw.get("eos_token_id")))
        self.dtype = dtype

    def parameters(self):
        return iter(self.weights.values())


class LiteTokenizer:
    """The subset of a transformers tokenizer the engine uses, on ``tokenizers`` and Jinja.

    It renders chat templates with the same Jinja settings as transformers (trim_blocks,
    lstrip_blocks, loop controls, ``raise_exception``, ``tojson``, ``strftime_now``).
    """

    def __init__(self, directory: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        config = _read_json(directory / "tokenizer_config.json")
        self.special = {name: _token_text(config.get(name)) for name in
                        ("bos_token", "eos_token", "pad_token", "unk_token")}
        self.eos_token = self.special["eos_token"]
        self.pad_token = self.special["pad_token"] or self.eos_token
        self.eos_token_id = self._id(self.eos_token)
        self.pad_token_id = self._id(self.pad_token)
        self.padding_side = "left"
        self.chat_template = _chat_template(directory)
        self._template = _compile(self.chat_template)

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self._tokenizer.token_to_id(token)

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool = False,
                            tokenize: bool = True, **_: Any) -> Any:
        text = self._template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                     **{k: v for k, v in self.special.items() if v is not None})
        return self(text, add_special_tokens=False)["input_ids"] if tokenize else text

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)


def load_lite(directory: Path, dtype: torch.dtype) -> tuple[LiteModel, LiteTokenizer]:
    return LiteModel(directory, dtype), LiteTokenizer(directory)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):  # {"content": "<|im_end|>", ...} in older tokenizer configs
        return value.get("content")
    return value


def _chat_template(directory: Path) -> str | None:
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    template = _read_json(directory / "tokenizer_config.json").get("chat_template")
    return template if isinstance(template, str) else None


def _compile(template: str) -> Any:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)
