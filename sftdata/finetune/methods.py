"""The PEFT methods: LoRA (default), prefix tuning, prompt tuning, IA3, all through peft.

Prefix and prompt tuning put virtual tokens in front of each row, so a row must hold one
example: packing is off for them. LoRA and IA3 can be merged into the base weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.errors import ConfigError

METHODS = ("lora", "prefix", "prompt", "ia3")
PROMPT_LEARNING = {"prefix", "prompt"}
MERGEABLE = {"lora", "ia3"}
# Learning rates that work for each method on small instruction sets (peft's examples and papers)
DEFAULT_LR = {"lora": 2e-4, "ia3": 3e-3, "prefix": 1e-2, "prompt": 3e-2}
FEEDFORWARD_NAMES = {"down_proj", "fc2", "w2", "c_proj", "dense_4h_to_h", "mlp.c_proj"}


@dataclass
class MethodOptions:
    method: str = "lora"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: str = "all-linear"   # "all-linear" or comma-separated module names
    virtual_tokens: int = 20             # prefix / prompt tuning

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}", "--method")
        if self.lora_r < 1:
            raise ConfigError(f"must be >= 1, got {self.lora_r}", "--lora-r")
        if self.lora_alpha <= 0:
            raise ConfigError(f"must be > 0, got {self.lora_alpha}", "--lora-alpha")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"must be in [0, 1), got {self.lora_dropout}", "--lora-dropout")
        if self.virtual_tokens < 1:
            raise ConfigError(f"must be >= 1, got {self.virtual_tokens}", "--virtual-tokens")
        if not self.target_modules.strip():
            raise ConfigError("is empty", "--target-modules")

    def targets(self) -> str | list[str]:
        text = self.target_modules.strip()
        if text == "all-linear":
            return text
        return [name.strip() for name in text.split(",") if name.strip()]


def peft_config(options: MethodOptions) -> Any:
    """The peft config object for ``options.method`` (task: causal LM)."""
    import peft

    options.validate()
    task = peft.TaskType.CAUSAL_LM
    if options.method == "lora":
        return peft.LoraConfig(task_type=task, r=options.lora_r, lora_alpha=options.lora_alpha,
                               lora_dropout=options.lora_dropout, target_modules=options.targets())
    if options.method == "ia3":
        targets = options.targets()
        if targets == "all-linear":  # peft's per-architecture defaults (attention k/v + MLP down)
            return peft.IA3Config(task_type=task)
        feedforward = [name for name in targets if name in FEEDFORWARD_NAMES]
        return peft.IA3Config(task_type=task, target_modules=targets, feedforward_modules=feedforward)
    if options.method == "prefix":
        return peft.PrefixTuningConfig(task_type=task, num_virtual_tokens=options.virtual_tokens)
    # prompt tuning: start from embeddings of real vocabulary tokens, not N(0, 1) noise that is far
    # larger than the model's own embeddings
    return peft.PromptTuningConfig(task_type=task, num_virtual_tokens=options.virtual_tokens,
                                   prompt_tuning_init=peft.PromptTuningInit.SAMPLE_VOCAB)


def apply_method(model: Any, options: MethodOptions) -> Any:
    """Wrap ``model`` with the PEFT method; only the method's parameters stay trainable."""
    import peft

    try:
        return peft.get_peft_model(model, peft_config(options))
    except ValueError as exc:  # e.g. target modules not found in the model
        raise ConfigError(str(exc), "--target-modules") from None


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
