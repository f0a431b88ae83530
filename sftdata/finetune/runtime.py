"""What the training loop runs on: the base model, the device and precision, DDP, the loss module.

Distributed training needs nothing of its own: under ``torchrun`` / ``accelerate launch`` the
environment carries ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``, :func:`init_distributed` starts the
process group (nccl on GPUs, gloo on CPU) and the loss module is wrapped in DDP.
"""

from __future__ import annotations

import math
import os
import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ConfigError
from ..llm.local.embedded import embedded_model_dir, load_model_and_tokenizer, native_bf16, resolve_model_dir
from .batching import Batch
from .data import IGNORE

PRECISIONS = ("auto", "bf16", "fp32")


# ---------------------------------------------------------------- base model

def lr_at(step: int, total: int, warmup: int, peak: float, floor: float) -> float:
    """Linear warmup to ``peak``, then cosine decay to ``floor`` at the last step."""
    if step < warmup:
        return peak * (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total - 1 - warmup)
    return floor + 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))) * (peak - floor)


def step_plan(config: Any, batches_per_epoch: int) -> tuple[int, int, int]:
    """(total optimizer steps, warmup steps, evaluate every N steps) for a run of ``config``
    (a FinetuneConfig): ``grad_accum`` batches a step, capped at ``max_steps``."""
    total = config.epochs * math.ceil(batches_per_epoch / config.grad_accum)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    return total, round(config.warmup_ratio * total), config.eval_every or max(1, total // 10)


def adapter_optimizer(model: torch.nn.Module, config: Any,
                      device: torch.device) -> tuple[torch.optim.Optimizer, list[torch.nn.Parameter]]:
    """AdamW over the trainable parameters, and those parameters. The fused kernel exists for CPU
    too (torch >= 2.4): one pass over all the adapter tensors rather than a dozen small ops per
    tensor; transformers' Trainer defaults to it as well."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                  fused=device.type in ("cuda", "cpu"))
    return optimizer, params


def optimizer_step(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], step: int, total: int,
                   warmup: int, peak: float, floor: float, max_grad_norm: float) -> tuple[float, float]:
    """One optimizer step after the window's backward: clip the gradients to ``max_grad_norm``, set
    the learning rate of ``step`` (:func:`lr_at`), step, clear the gradients. Returns
    (gradient norm before clipping, learning rate)."""
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    lr = lr_at(step, total, warmup, peak, floor)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(grad_norm), lr


def load_base(base_model: str | None, dtype: torch.dtype = torch.float32) -> tuple[Any, Any, str]:
    """(model, tokenizer, resolved path). None means the embedded SmolLM2-135M-Instruct; a ``.gguf``
    file loads dequantized (and is what the adapter records as its base, not the cache directory)."""
    if base_model is None:
        model, tokenizer = load_model_and_tokenizer(None, dtype=dtype)
        return model, tokenizer, str(embedded_model_dir().resolve())
    directory = resolve_model_dir(base_model, option="--base-model")
    model, tokenizer = load_model_and_tokenizer(str(directory), dtype=dtype)
    return model, tokenizer, str(Path(base_model).expanduser().resolve())


# ---------------------------------------------------------------- device, precision, memory

def pick_device(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 (frozen base weights in bf16, adapter weights in fp32, autocast) where the hardware
    computes it natively: a GPU that supports it, a CPU with AVX512-BF16 or AMX. Elsewhere bf16
    matmuls are emulated and slower than fp32."""
    if precision not in PRECISIONS:
        raise ConfigError(f"choose one of {', '.join(PRECISIONS)}", "--precision")
    if precision == "fp32":
        return False
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else native_bf16()
    if precision == "bf16" and device.type == "cuda" and not native:
        raise ConfigError("this GPU does not support bf16", "--precision")
    return native or precision == "bf16"


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process, and the CUDA allocator's peak on a GPU."""
    peak = {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # Linux: KiB
    if device.type == "cuda":
        peak["cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peak


# ---------------------------------------------------------------- distributed

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # for all-reduce

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, *values: float) -> list[float]:
        """Sum scalars over all processes (one all-reduce)."""
        if self.world == 1:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


def init_distributed() -> Dist:
    """Start the process group when launched by torchrun / accelerate (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if not torch.distributed.is_initialized():
        if cuda:
            torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return Dist(rank=rank, world=world, local_rank=local_rank,
                device=torch.device("cuda", local_rank) if cuda else torch.device("cpu"))


def close_distributed(dist: Dist) -> None:
    if dist.world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


# ---------------------------------------------------------------- the loss

class TokenLoss(nn.Module):
    """Summed next-token cross-entropy over the trained positions of a batch.

    For LoRA / IA3 the decoder runs on the whole batch but the LM head (a 49k-wide matmul on
    SmolLM2, and the largest activation in the model) only on trained positions. Prompt-learning
    methods go through peft's forward, which adds their virtual tokens. Returns the *sum*: the
    caller divides by the trainable tokens of the whole accumulation window.
    """

    def __init__(self, model: Any, prompt_learning: bool) -> None:
        super().__init__()
        self.model = model
        self.prompt_learning = prompt_learning

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor, position_ids: torch.Tensor,
                attention_mask: torch.Tensor | None, segments: list[tuple[int, int]] | None = None) -> torch.Tensor:
        trained = targets != IGNORE
        if self.prompt_learning:
            mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
            logits = self.model(input_ids=input_ids, attention_mask=mask).logits
            logits = logits[:, -input_ids.shape[1]:][trained]  # drop prompt tuning's virtual positions
        else:
            # a peft model's base holds the injected LoRA / IA3 layers; a plain model is its own base
            base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
            # ``segments`` reaches the attention function (packed_attention.py); others ignore it
            hidden = base.get_decoder()(input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask,
                                        use_cache=False, sftdata_segments=segments).last_hidden_state
            logits = base.get_output_embeddings()(hidden[trained])
        return F.cross_entropy(logits.float(), targets[trained], reduction="sum")


def batch_loss(module: nn.Module, batch: Batch) -> torch.Tensor:
    """Call ``module`` (a TokenLoss, or DDP around one: its forward must be the call) on a batch."""
    return module(batch.input_ids, batch.targets, batch.position_ids, batch.attention_mask, batch.segments)
