"""``sftdata finetune merge ADAPTER --out DIR``: fold a LoRA / IA3 adapter into its base weights.

The result is a plain HF model directory (safetensors + tokenizer with the chat template the
adapter was trained with) that loads without peft. Prefix and prompt tuning add virtual tokens
rather than weight deltas, so they cannot be merged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from .methods import MERGEABLE
from .outputs import read_info, trained_tokenizer


def adapter_base(adapter_dir: str | Path, base_model: str | None = None) -> str | None:
    """The base model of an adapter: the override, else what ``sftdata finetune`` recorded
    (None: the embedded model), else peft's ``base_model_name_or_path``."""
    if base_model is not None:
        return base_model
    info = read_info(adapter_dir)
    if info:
        return info.get("base_model")
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text(encoding="utf-8"))
    return config.get("base_model_name_or_path")


def merge_adapter(adapter_dir: str | Path, out: str | Path, base_model: str | None = None) -> dict[str, Any]:
    adapter_dir = Path(adapter_dir)
    config_path = adapter_dir / "adapter_config.json"
    if not config_path.is_file():
        raise ConfigError(f"{adapter_dir} is not a PEFT adapter directory (no adapter_config.json)", "ADAPTER")
    peft_type = json.loads(config_path.read_text(encoding="utf-8")).get("peft_type", "").lower()
    if peft_type not in MERGEABLE:
        raise ConfigError(f"a {peft_type or 'unknown'} adapter adds virtual tokens, not weight deltas, "
                          f"and cannot be merged; only {', '.join(sorted(MERGEABLE))} can", "ADAPTER")

    import torch
    from peft import PeftModel

    from .runtime import load_base

    base = adapter_base(adapter_dir, base_model)
    model, tokenizer, base_dir = load_base(base)
    model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    merged = model.merge_and_unload()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out, safe_serialization=True)
    # the tokenizer the adapter was trained with (it may carry a default chat template or pad)
    trained_tokenizer(adapter_dir, tokenizer).save_pretrained(out)
    return {"adapter": str(adapter_dir), "method": peft_type, "base_model": base_dir, "out": str(out),
            "parameters": sum(p.numel() for p in merged.parameters()),
            "dtype": str(next(merged.parameters()).dtype).replace("torch.", ""),
            "torch": torch.__version__}
