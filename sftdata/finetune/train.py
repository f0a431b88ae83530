"""The fine-tune stage: :func:`finetune` reads records, trains a PEFT adapter, writes it out.

The loop reads top to bottom (nanoGPT is the model): for each optimizer step take ``grad_accum``
batches, divide each batch's summed token loss by the trainable tokens of the whole window
(over every process), backward, clip, set the warmup + cosine learning rate, step. Evaluate on
the held-out split every ``eval_every`` steps.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from peft.helpers import disable_input_dtype_casting
from tqdm import tqdm

from ..core.errors import ConfigError, DataError, Interrupted
from ..core.records import Record
from . import outputs
from .batching import Batch, collate, plan_batches
from .config import FinetuneConfig
from .data import (
    TokenizedExample,
    TokenizeReport,
    check_replies,
    load_rows,
    prepare_tokenizer,
    tokenize_records,
)
from .fused_lora import fused_lora
from .methods import PROMPT_LEARNING, apply_method, count_parameters
from .packed_attention import packed_attention
from .runtime import (  # the schedule and the optimizer step live there: pair_train shares them
    Dist,
    TokenLoss,
    adapter_optimizer,
    batch_loss,
    close_distributed,
    init_distributed,
    load_base,
    optimizer_step,
    peak_memory_mb,
    pick_device,
    step_plan,
    use_bf16,
)

# ---------------------------------------------------------------- schedule and data order

def rank_batches(examples: Sequence[TokenizedExample], config: FinetuneConfig, epoch: int,
                 dist: Dist) -> list[list[list[int]]]:
    """This process's share of one epoch. Every rank gets the same count (the plan wraps around,
    as DistributedSampler does), so DDP never waits on a rank that ran out."""
    plan = plan_batches(examples, config.batch_tokens, config.max_len, bool(config.packing),
                        seed=config.seed + epoch)
    padded = math.ceil(len(plan) / dist.world) * dist.world
    plan = list(itertools.islice(itertools.cycle(plan), padded))
    return plan[dist.rank::dist.world]


def batch_stream(examples: Sequence[TokenizedExample], config: FinetuneConfig, dist: Dist,
                 pad_id: int, first_epoch: list[list[list[int]]]) -> Iterator[tuple[int, Batch]]:
    """(epoch, batch) forever; the caller stops after the planned number of steps.

    ``first_epoch`` is ``rank_batches(examples, config, 0, dist)``, which the caller has already
    planned to count the steps; later epochs are planned here.
    """
    epoch, plan = 0, first_epoch
    while True:
        for rows in plan:
            yield epoch, collate(examples, rows, pad_id, bool(config.packing))
        epoch += 1
        plan = rank_batches(examples, config, epoch, dist)


def split_eval(records: list[Record], fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Hold out about ``fraction`` of the records, grouped by id (duplicates stay together)."""
    ids = sorted({r.id for r in records})
    if fraction <= 0 or len(ids) < 2:
        return records, []
    random.Random(seed).shuffle(ids)
    held = set(ids[:min(len(ids) - 1, max(1, round(len(ids) * fraction)))])
    return [r for r in records if r.id not in held], [r for r in records if r.id in held]


# ---------------------------------------------------------------- the stage

def finetune(config: FinetuneConfig) -> dict[str, Any]:
    """Train an adapter on ``config.data`` and write it to ``config.out``; returns the summary.

    ``--method dpo`` / ``reward`` read preference pairs and train in their own loops."""
    if config.method == "dpo":
        from .dpo import train_dpo

        return train_dpo(config.resolve())
    if config.method == "reward":
        from .reward import train_reward

        return train_reward(config.resolve())
    return train_adapter(config)[0]


def train_adapter(config: FinetuneConfig) -> tuple[dict[str, Any], Any, Any]:
    """:func:`finetune`, also returning the trained peft model and the tokenizer."""
    config.resolve()
    dist = init_distributed()
    try:
        return _finetune(config, dist)
    finally:
        close_distributed(dist)


def backward_window(loss_module: torch.nn.Module, window: Sequence[Batch], device: torch.device,
                    dist: Dist, autocast: Any) -> tuple[float, float]:
    """Backward over one accumulation window; returns (summed token loss, trainable tokens), global.

    Each batch's summed loss is divided by the trainable tokens of the whole window on every
    process, so every token weighs the same whatever batch it fell in: the gradient is that of
    the mean token loss over the window (DDP averages over processes, hence the * world).
    """
    (window_tokens,) = dist.sum(sum(b.n_trainable for b in window))
    loss_sum = 0.0
    for i, batch in enumerate(window):
        sync = i == len(window) - 1 or dist.world == 1  # DDP: all-reduce gradients once per window
        with (contextlib.nullcontext() if sync else loss_module.no_sync()), autocast:
            loss = batch_loss(loss_module, batch.to(device))
        (loss * dist.world / window_tokens).backward()
        loss_sum += float(loss.detach())
    (loss_sum,) = dist.sum(loss_sum)
    return loss_sum, window_tokens


@dataclass
class Run:
    """What the summary reports about one run, gathered as the stage goes."""

    config: FinetuneConfig
    dist: Dist
    started: float
    base_dir: str = ""
    tokenizer_changes: dict[str, Any] = field(default_factory=dict)
    train: TokenizeReport | None = None
    held: TokenizeReport | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    bf16: bool = False
    trainable: int = 0
    total_params: int = 0
    curves: outputs.Curves = field(default_factory=outputs.Curves)
    train_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        config, curves, train, held = self.config, self.curves, self.train, self.held
        assert train is not None and held is not None
        seconds = self.train_seconds
        return {
            "out": config.out, "method": config.method, "base_model": self.base_dir,
            "examples": len(train.examples), "eval_examples": len(held.examples),
            "truncated": train.truncated + held.truncated, "dropped": train.dropped + held.dropped,
            "steps": len(curves.train), "epochs": config.epochs, "packing": config.packing,
            "trainable_params": self.trainable, "total_params": self.total_params,
            "train_loss": curves.train[-1]["loss"] if curves.train else None,
            "eval_loss": curves.last_eval("loss"), "eval_perplexity": curves.last_eval("perplexity"),
            "trained_tokens": curves.trained_tokens, "real_tokens": curves.real_tokens,
            "train_seconds": round(seconds, 3),
            "tokens_per_s": round(curves.real_tokens / seconds, 2) if seconds else None,
            "trained_tokens_per_s": round(curves.trained_tokens / seconds, 2) if seconds else None,
            "peak_memory_mb": peak_memory_mb(self.device), "bf16": self.bf16, "world_size": self.dist.world,
            "tokenizer_changes": self.tokenizer_changes, "warnings": curves.warnings,
            "seconds": round(time.perf_counter() - self.started, 3),
        }


def _finetune(config: FinetuneConfig, dist: Dist) -> tuple[dict[str, Any], Any, Any]:
    run = Run(config=config, dist=dist, started=time.perf_counter())
    records = load_rows(config.data)  # read everything first: a bad line fails before any work
    if config.eval_data:
        train_records, eval_records = records, load_rows(config.eval_data)
    else:
        train_records, eval_records = split_eval(records, config.eval_split, config.seed)
    check_replies(train_records + eval_records)

    device = run.device = pick_device(dist.local_rank)
    run.bf16 = use_bf16(config.precision, device)
    torch.manual_seed(config.seed)
    # the frozen base can live in bf16; peft keeps the trained adapter weights in fp32
    model, tokenizer, run.base_dir = load_base(config.base_model,
                                               torch.bfloat16 if run.bf16 else torch.float32)
    run.tokenizer_changes = prepare_tokenizer(tokenizer)
    context = getattr(model.config, "max_position_embeddings", None)
    if context and config.max_len > context:
        raise ConfigError(f"{config.max_len} is beyond the model's context of {context} tokens", "--max-len")
    train = run.train = tokenize_records(tokenizer, train_records, config.max_len)
    held = run.held = tokenize_records(tokenizer, eval_records, config.max_len)
    if not train.examples:
        raise DataError(config.data[0], None, f"no example fits --max-len {config.max_len} "
                        f"({train.dropped} dropped as too long)")

    model = apply_method(model, config.method_options()).to(device)
    if config.gradient_checkpointing:
        base = model.get_base_model()  # transformers 5 renamed it; 4.x has only the old name
        enable = getattr(base, "activation_checkpointing_enable", None) or base.gradient_checkpointing_enable
        enable({"use_reentrant": False})  # non-reentrant: no need for inputs that require grad
    run.trainable, run.total_params = count_parameters(model)
    loss_module: torch.nn.Module = TokenLoss(model, config.method in PROMPT_LEARNING)
    if dist.world > 1:
        loss_module = torch.nn.parallel.DistributedDataParallel(
            loss_module, device_ids=[device.index] if device.type == "cuda" else None)

    first_epoch = rank_batches(train.examples, config, 0, dist)
    total_steps, warmup, eval_every = step_plan(config, len(first_epoch))
    optimizer, params = adapter_optimizer(model, config, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=run.bf16)
    held_batches = [collate(held.examples, rows, tokenizer.pad_token_id, bool(config.packing))
                    for rows in plan_batches(held.examples, config.batch_tokens, config.max_len,
                                             bool(config.packing), seed=0)[dist.rank::dist.world]]

    def evaluate() -> float | None:
        if not held.examples:
            return None
        model.eval()
        loss_sum, tokens = 0.0, 0
        with torch.no_grad(), autocast:
            for batch in held_batches:  # the bare module: no DDP bookkeeping for a no-grad pass
                loss_sum += float(batch_loss(_unwrap(loss_module), batch.to(device)))
                tokens += batch.n_trainable
        model.train()
        loss_sum, tokens = dist.sum(loss_sum, tokens)
        return loss_sum / tokens

    curves = run.curves
    stream = batch_stream(train.examples, config, dist, tokenizer.pad_token_id, first_epoch)
    bar = tqdm(total=total_steps, file=sys.stderr, unit="step", dynamic_ncols=True,
               disable=not (config.progress and dist.main), desc=f"finetune {config.method}")
    step = 0
    # under autocast, peft casting each adapter input to the adapter's fp32 dtype only copies every
    # activation there and back (a fifth of the step on CPU): autocast handles the dtypes. LoRA
    # layers run fused (fused_lora.py), packed batches attend per example (packed_attention.py)
    attend_packed = packed_attention(model) if config.packing else contextlib.nullcontext(False)
    try:
        with disable_input_dtype_casting(model, active=run.bf16), fused_lora(model), attend_packed:
            curves.add_eval(0, evaluate())
            model.train()
            train_started = time.perf_counter()
            for step in range(total_steps):
                epoch_of = [next(stream) for _ in range(config.grad_accum)]
                window = [batch for _, batch in epoch_of]
                loss_sum, window_tokens = backward_window(loss_module, window, device, dist, autocast)
                grad_norm, lr = optimizer_step(optimizer, params, step, total_steps, warmup, config.lr,
                                               config.lr * config.min_lr_ratio, config.max_grad_norm)

                train_loss = loss_sum / window_tokens
                (window_real,) = dist.sum(sum(b.n_real for b in window))
                run.train_seconds = time.perf_counter() - train_started
                curves.add_train(step + 1, train_loss, lr, grad_norm, window_tokens, window_real,
                                 epoch=epoch_of[-1][0], seconds=run.train_seconds)
                if (step + 1) % eval_every == 0 or step + 1 == total_steps:
                    warning = curves.add_eval(step + 1, evaluate())
                    if warning and dist.main:
                        tqdm.write(f"warning: {warning}", file=sys.stderr)
                bar.set_postfix(loss=f"{train_loss:.3f}",
                                tok_s=f"{curves.real_tokens / max(run.train_seconds, 1e-9):.0f}", refresh=False)
                bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        if dist.main:
            outputs.save_all(run, model, tokenizer, interrupted=True)
        raise Interrupted(f"interrupted at step {step}; the adapter so far is saved in {config.out}") from None
    bar.close()
    summary = run.summary()
    if dist.main:
        outputs.save_all(run, model, tokenizer)
    dist.barrier()
    return summary, model, tokenizer


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module
