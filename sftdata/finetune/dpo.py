"""``sftdata finetune train PAIRS --method dpo``: Direct Preference Optimization of a LoRA adapter.

The policy is a LoRA adapter: a fresh one on the base model, or the SFT adapter given as
``--ref-adapter`` (trained further). The reference is the policy before any update (the base with
adapters disabled, or the SFT adapter as given): its log-probabilities are computed once, in a
no-grad pass before training, and kept (TRL's ``precompute_ref_log_probs``), instead of a second
forward pass every step. The loss is TRL's (sigmoid by default, IPO and hinge optional) and the
run logs what TRL logs: rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies,
logps/chosen, logps/rejected. The loop, checkpoints and outputs are :mod:`.pair_train`'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..core.errors import ConfigError
from .config import FinetuneConfig
from .methods import apply_method
from .pair_batching import PairBatch, collate_pairs, pair_logps, plan_pair_batches, preference_loss
from .pair_train import train_pairs
from .runtime import load_base


def load_policy(config: FinetuneConfig, dtype: torch.dtype) -> tuple[Any, Any, str]:
    """(peft model with a trainable LoRA, tokenizer, base dir)."""
    model, tokenizer, base_dir = load_base(config.base_model, dtype)
    if config.ref_adapter:
        from peft import PeftModel

        from .outputs import trained_tokenizer

        if not (Path(config.ref_adapter) / "adapter_config.json").is_file():
            raise ConfigError(f"{config.ref_adapter} holds no adapter_config.json", "--ref-adapter")
        tokenizer = trained_tokenizer(config.ref_adapter, tokenizer)
        return PeftModel.from_pretrained(model, config.ref_adapter, is_trainable=True), tokenizer, base_dir
    return apply_method(model, config.method_options()), tokenizer, base_dir


def reference_logps(model: Any, examples: Sequence[Any], config: FinetuneConfig, pad_id: int,
                    device: torch.device, autocast: Any, fresh: bool) -> torch.Tensor:
    """(2, len(examples)): chosen and rejected log-probs of the reference. ``fresh``: the policy is a
    new LoRA, so the reference is the base with adapters disabled; otherwise the policy as it is."""
    out = torch.zeros(2, len(examples), dtype=torch.float64)
    if not examples:
        return out
    was_training = model.training
    model.eval()
    with torch.no_grad(), autocast, (model.disable_adapter() if fresh else contextlib.nullcontext()):
        for rows in plan_pair_batches(examples, config.batch_tokens, config.max_len, seed=0):
            batch = collate_pairs(examples, rows, pad_id).to(device)
            logps = pair_logps(model, batch).double().cpu()
            index = torch.tensor(batch.pair_index)
            out[0, index], out[1, index] = logps[:batch.n_pairs], logps[batch.n_pairs:]
    model.train(was_training)
    return out


def batch_reference(reference: torch.Tensor, batch: PairBatch, device: torch.device) -> torch.Tensor:
    index = torch.tensor(batch.pair_index)
    return torch.cat([reference[0, index], reference[1, index]]).to(device=device, dtype=torch.float32)


class DpoObjective:
    name = "dpo"
    stat_keys = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                 "logps/chosen", "logps/rejected")
    summary_keys = {"eval_accuracy": "rewards/accuracies", "eval_margin": "rewards/margins"}

    def load(self, config: FinetuneConfig, dtype: torch.dtype) -> tuple[Any, Any, str]:
        return load_policy(config, dtype)

    def prepare(self, model: Any, examples: Sequence[Any], config: FinetuneConfig, pad_id: int,
                device: torch.device, autocast: Any) -> torch.Tensor:
        return reference_logps(model, examples, config, pad_id, device, autocast, fresh=not config.ref_adapter)

    def losses(self, model: Any, batch: PairBatch, prepared: torch.Tensor, config: FinetuneConfig,
               device: torch.device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return preference_loss(pair_logps(model, batch), batch_reference(prepared, batch, device),
                               config.beta, config.loss, batch.lengths.to(device))

    def info(self, config: FinetuneConfig) -> dict[str, Any]:
        return {"loss_type": config.loss, "beta": config.beta,
                "reference": config.ref_adapter or "base (adapters disabled)"}


def train_dpo(config: FinetuneConfig) -> dict[str, Any]:
    return train_pairs(config, DpoObjective())
