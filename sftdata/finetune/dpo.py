"""``sftdata finetune train PAIRS --method dpo``: Direct Preference Optimization of a LoRA adapter.

The policy is a LoRA adapter: a fresh one on the base model, or the SFT adapter given as
``--ref-adapter`` (trained further). The reference is the policy before any update (the base with
adapters disabled, or the SFT adapter as given): its log-probabilities are computed once, in a
no-grad pass before training, and kept (TRL's ``precompute_ref_log_probs``), instead of a second
forward pass every step. The loss is TRL's (sigmoid by default, IPO and hinge optional) and the
run logs what TRL logs: rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies,
logps/chosen, logps/rejected.

A checkpoint (adapter, optimizer, step, curves, reference log-probs) is written to
``--out/checkpoint`` every ``--save-every`` steps, on Ctrl-C and at ``--stop-after``;
``--resume`` continues from it with the same data order and schedule.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .. import __version__
from ..core.errors import ConfigError, DataError, Interrupted
from ..core.records import write_jsonl
from .config import FinetuneConfig
from .data import prepare_tokenizer
from .methods import apply_method, count_parameters
from .outputs import INFO_FILE, METRICS_FILE, PLOT_FILE
from .pair_batching import PairBatch, collate_pairs, pair_logps, plan_pair_batches, preference_loss
from .preference import PairReport, load_pairs, pair_row, split_pairs, tokenize_pairs
from .runtime import load_base, peak_memory_mb, pick_device, use_bf16
from .train import lr_at

CHECKPOINT = "checkpoint"
STAT_KEYS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
             "logps/chosen", "logps/rejected")


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
                    device: torch.device, autocast: Any) -> torch.Tensor:
    """(2, len(examples)): chosen and rejected log-probs of the policy before training."""
    out = torch.zeros(2, len(examples), dtype=torch.float64)
    if not examples:
        return out
    fresh = not config.ref_adapter  # a fresh LoRA: the reference is the base, adapters disabled
    was_training = model.training
    model.eval()
    with torch.no_grad(), autocast, (model.disable_adapter() if fresh else _nothing()):
        for rows in plan_pair_batches(examples, config.batch_tokens, config.max_len, seed=0):
            batch = collate_pairs(examples, rows, pad_id).to(device)
            logps = pair_logps(model, batch).double().cpu()
            index = torch.tensor(batch.pair_index)
            out[0, index], out[1, index] = logps[:batch.n_pairs], logps[batch.n_pairs:]
    model.train(was_training)
    return out


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def batch_reference(reference: torch.Tensor, batch: PairBatch, device: torch.device) -> torch.Tensor:
    index = torch.tensor(batch.pair_index)
    return torch.cat([reference[0, index], reference[1, index]]).to(device=device, dtype=torch.float32)


def _mean_stats(stats: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    return {key: float(torch.cat([s[key].float().cpu() for s in stats]).mean()) for key in STAT_KEYS}


def train_dpo(config: FinetuneConfig) -> dict[str, Any]:
    started = time.perf_counter()
    pairs = load_pairs(config.data)
    if config.eval_data:
        train_pairs, held_pairs = pairs, load_pairs(config.eval_data)
    else:
        train_pairs, held_pairs = split_pairs(pairs, config.eval_split, config.seed)
    device = pick_device(0)
    bf16 = use_bf16(config.precision, device)
    torch.manual_seed(config.seed)
    model, tokenizer, base_dir = load_policy(config, torch.bfloat16 if bf16 else torch.float32)
    prepare_tokenizer(tokenizer)
    train = tokenize_pairs(tokenizer, train_pairs, config.max_len)
    held = tokenize_pairs(tokenizer, held_pairs, config.max_len)
    if not train.examples:
        raise DataError(config.data[0], None, f"no pair fits --max-len {config.max_len}")
    model = model.to(device)
    if config.gradient_checkpointing:
        model.get_base_model().gradient_checkpointing_enable({"use_reentrant": False})
    trainable, total_params = count_parameters(model)
    pad_id = tokenizer.pad_token_id
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    out = Path(config.out)
    state = _load_checkpoint(out, model, config) if config.resume else None
    if state is not None:
        ref_train, ref_held = state["ref_train"], state["ref_held"]
    else:
        ref_train = reference_logps(model, train.examples, config, pad_id, device, autocast)
        ref_held = reference_logps(model, held.examples, config, pad_id, device, autocast)

    epoch_batches = len(plan_pair_batches(train.examples, config.batch_tokens, config.max_len, config.seed))
    total_steps = config.epochs * math.ceil(epoch_batches / config.grad_accum)
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    warmup = round(config.warmup_ratio * total_steps)
    eval_every = config.eval_every or max(1, total_steps // 10)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    curves: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
    counters = {"real_tokens": 0, "pairs": 0, "train_seconds": 0.0}
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
                loss, stat = preference_loss(pair_logps(model, batch), batch_reference(ref_held, batch, device),
                                             config.beta, config.loss, batch.lengths)
                losses.append(loss.detach().float().cpu())
                stats.append(stat)
        model.train()
        return {"loss": float(torch.cat(losses).mean()), **_mean_stats(stats)}

    def checkpoint(step: int) -> None:
        _save_checkpoint(out, model, {"step": step, "optimizer": optimizer.state_dict(), "curves": curves,
                                      "counters": counters, "ref_train": ref_train, "ref_held": ref_held,
                                      "fingerprint": _fingerprint(config)})

    if start_step == 0:
        first = evaluate()
        if first:
            curves["eval"].append({"step": 0, **first})
    stream = _pair_stream(train.examples, config, pad_id, skip=start_step * config.grad_accum)
    bar = tqdm(total=total_steps, initial=start_step, file=sys.stderr, unit="step", dynamic_ncols=True,
               disable=not config.progress, desc=f"finetune {config.loss} dpo")
    model.train()
    step = start_step
    resumed_at = time.perf_counter() - counters["train_seconds"]
    try:
        for step in range(start_step, total_steps):
            window = [next(stream) for _ in range(config.grad_accum)]
            n_window = sum(batch.n_pairs for _, batch in window)
            loss_sum, stats = 0.0, []
            for _, batch in window:
                batch = batch.to(device)
                with autocast:
                    losses, stat = preference_loss(pair_logps(model, batch), batch_reference(ref_train, batch, device),
                                                   config.beta, config.loss, batch.lengths)
                (losses.sum() / n_window).backward()  # every pair of the window weighs the same
                loss_sum += float(losses.detach().sum())
                stats.append(stat)
                counters["real_tokens"] += batch.n_real
            counters["pairs"] += n_window
            grad_norm = torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            lr = lr_at(step, total_steps, warmup, config.lr, config.lr * config.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            counters["train_seconds"] = time.perf_counter() - resumed_at
            curves["train"].append({"step": step + 1, "loss": loss_sum / n_window, **_mean_stats(stats),
                                    "lr": lr, "grad_norm": float(grad_norm), "pairs": n_window,
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
                return {"out": config.out, "method": "dpo", "stopped_at": step + 1, "steps": total_steps,
                        "checkpoint": str(out / CHECKPOINT)}
    except KeyboardInterrupt:
        bar.close()
        checkpoint(step)
        raise Interrupted(f"interrupted at step {step}; resume with --resume (checkpoint in "
                          f"{out / CHECKPOINT})") from None
    bar.close()
    summary = _summary(config, base_dir, train, held, curves, counters, total_steps, trainable, total_params,
                       device, bf16, started)
    _save(out, model, tokenizer, config, base_dir, summary, curves, held, train.rejected + held.rejected)
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


def _summary(config: FinetuneConfig, base_dir: str, train: PairReport, held: PairReport, curves: dict,
             counters: dict, total_steps: int, trainable: int, total_params: int, device: torch.device,
             bf16: bool, started: float) -> dict[str, Any]:
    last_eval = curves["eval"][-1] if curves["eval"] else {}
    seconds = counters["train_seconds"]
    return {
        "out": config.out, "method": "dpo", "loss_type": config.loss, "beta": config.beta,
        "reference": config.ref_adapter or "base (adapters disabled)", "base_model": base_dir,
        "pairs": len(train.examples), "eval_pairs": len(held.examples), "truncated": train.truncated + held.truncated,
        "dropped": len(train.rejected) + len(held.rejected), "steps": total_steps, "epochs": config.epochs,
        "trainable_params": trainable, "total_params": total_params,
        "train_loss": curves["train"][-1]["loss"] if curves["train"] else None,
        "eval_loss": last_eval.get("loss"), "eval_accuracy": last_eval.get("rewards/accuracies"),
        "eval_margin": last_eval.get("rewards/margins"),
        "real_tokens": counters["real_tokens"], "train_seconds": round(seconds, 3),
        "tokens_per_s": round(counters["real_tokens"] / seconds, 2) if seconds else None,
        "peak_memory_mb": peak_memory_mb(device), "bf16": bf16,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _save(out: Path, model: Any, tokenizer: Any, config: FinetuneConfig, base_dir: str,
          summary: dict[str, Any], curves: dict, held: PairReport, rejected: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for peft_config in model.peft_config.values():
        peft_config.base_model_name_or_path = base_dir
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {"sftdata_version": __version__, "base_model": config.base_model, "base_model_dir": base_dir,
            "method": "dpo", "peft_method": "lora", "reference": config.ref_adapter, "interrupted": False,
            "config": asdict(config)}
    (out / INFO_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    metrics = {**summary, "curves": curves}
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_jsonl(out / "eval.jsonl", [pair_row(p) for p in held.kept])
    if rejected:
        write_jsonl(out / "rejected.jsonl", rejected)
    from .plot import plot_curves

    plot_curves(curves["train"], curves["eval"], out / PLOT_FILE, title=f"dpo on {Path(base_dir).name}")
