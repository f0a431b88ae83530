"""The training loop shared by the preference methods (``--method dpo`` and ``--method reward``).

Both read preference pairs, split them by prompt (a prompt never on both sides), batch them with
the prompt computed once per pair (:mod:`.pair_batching`), and differ only in their
:class:`Objective`: how the model is loaded, what is computed before training (DPO's reference
log-probs), and the per-pair loss with the metrics TRL logs for it.

A checkpoint (adapter, optimizer, step, curves, the objective's precomputed state) is written to
``--out/checkpoint`` every ``--save-every`` steps, on Ctrl-C and at ``--stop-after``;
``--resume`` continues from it with the same data order and schedule.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from .. import __version__
from ..core.errors import ConfigError, DataError, Interrupted
from ..core.records import write_jsonl
from .config import FinetuneConfig
from .data import prepare_tokenizer
from .fused_lora import fused_lora
from .methods import count_parameters
from .outputs import INFO_FILE, METRICS_FILE, PLOT_FILE
from .pair_batching import PairBatch, collate_pairs, plan_pair_batches
from .preference import PairReport, load_pairs, pair_row, split_pairs, tokenize_pairs
from .runtime import adapter_optimizer, optimizer_step, peak_memory_mb, pick_device, step_plan, use_bf16


class Objective(Protocol):
    name: str
    stat_keys: tuple[str, ...]
    summary_keys: dict[str, str]   # summary name -> eval curve key

    def load(self, config: FinetuneConfig, dtype: torch.dtype) -> tuple[Any, Any, str]:
        """(peft model, tokenizer, base model dir)."""

    def prepare(self, model: Any, examples: Sequence[Any], config: FinetuneConfig, pad_id: int,
                device: torch.device, autocast: Any) -> Any:
        """What the loss needs besides the model, computed before training (kept in checkpoints)."""

    def losses(self, model: Any, batch: PairBatch, prepared: Any, config: FinetuneConfig,
               device: torch.device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-pair losses (n,) and per-pair metrics."""

    def info(self, config: FinetuneConfig) -> dict[str, Any]:
        """Extra fields of the summary and of sftdata_finetune.json."""


CHECKPOINT = "checkpoint"


def _mean_stats(stats: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    return {key: float(torch.cat([s[key].float().cpu() for s in stats]).mean()) for key in stats[0]}


def train_pairs(config: FinetuneConfig, objective: Objective) -> dict[str, Any]:
    """Train ``objective`` on the pairs of ``config.data``; write ``config.out``; return the summary."""
    started = time.perf_counter()
    pairs = load_pairs(config.data)
    if config.eval_data:
        train_pairs, held_pairs = pairs, load_pairs(config.eval_data)
    else:
        train_pairs, held_pairs = split_pairs(pairs, config.eval_split, config.seed)
    device = pick_device(0)
    bf16 = use_bf16(config.precision, device)
    torch.manual_seed(config.seed)
    model, tokenizer, base_dir = objective.load(config, torch.bfloat16 if bf16 else torch.float32)
    prepare_tokenizer(tokenizer)
    train = tokenize_pairs(tokenizer, train_pairs, config.max_len)
    held = tokenize_pairs(tokenizer, held_pairs, config.max_len)
    if not train.examples:
        raise DataError(config.data[0], None, f"no pair fits --max-len {config.max_len}")
    model = model.to(device)
    if config.gradient_checkpointing:
        base = model.get_base_model()  # transformers 5 renamed it; 4.x has only the old name
        enable = getattr(base, "activation_checkpointing_enable", None) or base.gradient_checkpointing_enable
        enable({"use_reentrant": False})
    trainable, total_params = count_parameters(model)
    pad_id = tokenizer.pad_token_id
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    out = Path(config.out)
    state = _load_checkpoint(out, model, config) if config.resume else None
    if state is not None:
        ref_train, ref_held = state["prepared_train"], state["prepared_held"]
    else:
        prepare_started = time.perf_counter()
        ref_train = objective.prepare(model, train.examples, config, pad_id, device, autocast)
        ref_held = objective.prepare(model, held.examples, config, pad_id, device, autocast)
        reference_seconds = time.perf_counter() - prepare_started

    epoch_batches = len(plan_pair_batches(train.examples, config.batch_tokens, config.max_len, config.seed))
    total_steps, warmup, eval_every = step_plan(config, epoch_batches)
    optimizer, params = adapter_optimizer(model, config, device)
    curves: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
    counters = {"real_tokens": 0, "pairs": 0, "train_seconds": 0.0,
                "reference_seconds": 0.0 if state is not None else round(reference_seconds, 3)}
    start_step = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        curves, counters, start_step = state["curves"], state["counters"], state["step"]

    def evaluate() -> dict[str, float] | None:
        if not held.examples:
            return None
        model.eval()
        losses, stats = [], []
        with torch.no_grad(), autocast:
            for rows in plan_pair_batches(held.examples, config.batch_tokens, config.max_len, seed=0):
                batch = collate_pairs(held.examples, rows, pad_id).to(device)
                loss, stat = objective.losses(model, batch, ref_held, config, device)
                losses.append(loss.detach().float().cpu())
                stats.append(stat)
        model.train()
        return {"loss": float(torch.cat(losses).mean()), **_mean_stats(stats)}

    def checkpoint(step: int) -> None:
        _save_checkpoint(out, model, {"step": step, "optimizer": optimizer.state_dict(), "curves": curves,
                                      "counters": counters, "prepared_train": ref_train, "prepared_held": ref_held,
                                      "fingerprint": _fingerprint(config)})

    if start_step == 0:
        first = evaluate()
        if first:
            curves["eval"].append({"step": 0, **first})
    stream = _pair_stream(train.examples, config, pad_id, skip=start_step * config.grad_accum)
    bar = tqdm(total=total_steps, initial=start_step, file=sys.stderr, unit="step", dynamic_ncols=True,
               disable=not config.progress, desc=f"finetune {objective.name}")
    model.train()
    step = start_step
    resumed_at = time.perf_counter() - counters["train_seconds"]
    try:
        with fused_lora(model):  # one output tensor per LoRA layer (fused_lora.py), as the SFT loop
            for step in range(start_step, total_steps):
                window = [next(stream) for _ in range(config.grad_accum)]
                n_window = sum(batch.n_pairs for _, batch in window)
                loss_sum, stats = torch.zeros((), device=device), []  # summed on the device: no sync per batch
                for _, batch in window:
                    batch = batch.to(device)
                    with autocast:
                        losses, stat = objective.losses(model, batch, ref_train, config, device)
                    (losses.sum() / n_window).backward()  # every pair of the window weighs the same
                    loss_sum += losses.detach().sum().float()
                    stats.append(stat)
                    counters["real_tokens"] += batch.n_real
                counters["pairs"] += n_window
                grad_norm, lr = optimizer_step(optimizer, params, step, total_steps, warmup, config.lr,
                                               config.lr * config.min_lr_ratio, config.max_grad_norm)
                loss_sum = float(loss_sum)  # the step's one sync, before the clock is read
                counters["train_seconds"] = time.perf_counter() - resumed_at
                curves["train"].append({"step": step + 1, "loss": loss_sum / n_window, **_mean_stats(stats),
                                        "lr": lr, "grad_norm": grad_norm, "pairs": n_window,
                                        "epoch": window[-1][0], "seconds": round(counters["train_seconds"], 3)})
                if (step + 1) % eval_every == 0 or step + 1 == total_steps:
                    result = evaluate()
                    if result:
                        curves["eval"].append({"step": step + 1, **result})
                bar.set_postfix(loss=f"{loss_sum / n_window:.3f}", refresh=False)
                bar.update(1)
                if config.save_every and (step + 1) % config.save_every == 0:
                    checkpoint(step + 1)
                if config.stop_after is not None and step + 1 >= config.stop_after and step + 1 < total_steps:
                    checkpoint(step + 1)
                    bar.close()
                    return {"out": config.out, "method": objective.name, "stopped_at": step + 1, "steps": total_steps,
                            "checkpoint": str(out / CHECKPOINT)}
    except KeyboardInterrupt:
        bar.close()
        checkpoint(step)
        raise Interrupted(f"interrupted at step {step}; resume with --resume (checkpoint in "
                          f"{out / CHECKPOINT})") from None
    bar.close()
    summary = _summary(config, objective, base_dir, train, held, curves, counters, total_steps, trainable,
                       total_params, device, bf16, started)
    _save(out, model, tokenizer, config, objective, base_dir, summary, curves, held,
          train.rejected + held.rejected)
    return summary


def _pair_stream(examples: Sequence[Any], config: FinetuneConfig, pad_id: int, skip: int):
    """(epoch, batch) forever, the same order on every run of a seed; the first ``skip`` batches
    (already trained before a resume) are planned but not collated."""
    epoch = 0
    while True:
        for rows in plan_pair_batches(examples, config.batch_tokens, config.max_len, config.seed + epoch):
            if skip:
                skip -= 1
                continue
            yield epoch, collate_pairs(examples, rows, pad_id)
        epoch += 1


# ---------------------------------------------------------------- checkpoint and outputs

def _fingerprint(config: FinetuneConfig) -> dict[str, Any]:
    """What must not change between a run and its resume (data order and schedule depend on it)."""
    keep = ("data", "base_model", "ref_adapter", "epochs", "batch_tokens", "grad_accum", "max_len", "seed",
            "lora_r", "lora_alpha", "target_modules", "eval_split", "eval_data", "max_steps", "loss", "beta")
    return {key: getattr(config, key) for key in keep}


def _save_checkpoint(out: Path, model: Any, state: dict[str, Any]) -> None:
    directory = out / CHECKPOINT
    tmp = out / (CHECKPOINT + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    torch.save(state, tmp / "state.pt")
    if directory.exists():
        import shutil

        shutil.rmtree(directory)
    tmp.rename(directory)  # a kill mid-save leaves the previous checkpoint whole


def _load_checkpoint(out: Path, model: Any, config: FinetuneConfig) -> dict[str, Any]:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    directory = out / CHECKPOINT
    if not (directory / "state.pt").is_file():
        raise ConfigError(f"no checkpoint in {directory} to resume from", "--resume")
    state = torch.load(directory / "state.pt", weights_only=False)
    changed = {k: v for k, v in _fingerprint(config).items() if state["fingerprint"].get(k) != v}
    if changed:
        raise ConfigError(f"the checkpoint was written with other settings ({', '.join(sorted(changed))}); "
                          "resume with the same ones", "--resume")
    set_peft_model_state_dict(model, load_file(directory / "adapter_model.safetensors"))
    return state


def _summary(config: FinetuneConfig, objective: Objective, base_dir: str, train: PairReport, held: PairReport,
             curves: dict, counters: dict, total_steps: int, trainable: int, total_params: int,
             device: torch.device, bf16: bool, started: float) -> dict[str, Any]:
    last_eval = curves["eval"][-1] if curves["eval"] else {}
    seconds = counters["train_seconds"]
    return {
        "out": config.out, "method": objective.name, **objective.info(config), "base_model": base_dir,
        "pairs": len(train.examples), "eval_pairs": len(held.examples), "truncated": train.truncated + held.truncated,
        "dropped": len(train.rejected) + len(held.rejected), "steps": total_steps, "epochs": config.epochs,
        "trainable_params": trainable, "total_params": total_params,
        "train_loss": curves["train"][-1]["loss"] if curves["train"] else None,
        "eval_loss": last_eval.get("loss"),
        **{name: last_eval.get(key) for name, key in objective.summary_keys.items()},
        "real_tokens": counters["real_tokens"], "train_seconds": round(seconds, 3),
        "reference_seconds": counters.get("reference_seconds", 0.0),
        "tokens_per_s": round(counters["real_tokens"] / seconds, 2) if seconds else None,
        "peak_memory_mb": peak_memory_mb(device), "bf16": bf16,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _save(out: Path, model: Any, tokenizer: Any, config: FinetuneConfig, objective: Objective, base_dir: str,
          summary: dict[str, Any], curves: dict, held: PairReport, rejected: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for peft_config in model.peft_config.values():
        peft_config.base_model_name_or_path = base_dir
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {"sftdata_version": __version__, "base_model": config.base_model, "base_model_dir": base_dir,
            "method": objective.name, "peft_method": "lora", **objective.info(config), "interrupted": False,
            "config": asdict(config)}
    (out / INFO_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    metrics = {**summary, "curves": curves}
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_jsonl(out / "eval.jsonl", [pair_row(p) for p in held.kept])
    if rejected:
        write_jsonl(out / "rejected.jsonl", rejected)
    from .plot import plot_curves

    plot_curves(curves["train"], curves["eval"], out / PLOT_FILE, title=f"{objective.name} on {Path(base_dir).name}")
