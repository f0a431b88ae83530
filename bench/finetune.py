"""Fine-tune throughput: sftdata's stage against TRL's SFTTrainer (packing, padding-free) and a plain
transformers ``Trainer`` + peft LoRA, in one run.

All three sides train the same model with the same LoRA config (all linear layers, r=16, alpha=32,
dropout 0), the same optimizer (fused AdamW, no weight decay, clipping at 1.0), the same learning
rate (constant, no warmup: a few-step run would otherwise see sftdata's and transformers' cosine
discretized differently, step for step), the same precision, for one epoch over the
same examples: the first ``--examples`` records of ``seeds/en.jsonl`` (real instruction data,
151 tokens on average with SmolLM2's template), rendered and masked by
``sftdata.finetune.data`` so every side sees identical token ids and loss masks.

* precision, like for like: with bf16 every side holds the frozen base in bf16, the LoRA weights
  in fp32, under autocast (what sftdata does); with fp32 every side is fp32 throughout.
* timed span, like for like: the training loop only. sftdata reports its loop's seconds; the
  Trainer sides are timed from ``on_train_begin`` to ``on_train_end`` (a callback), so model
  loading, tokenization and trainer construction are outside on every side.
* TRL (the peer): ``SFTTrainer`` on the pre-tokenized examples with a ``completion_mask`` (loss
  on the reply only), ``packing=True`` (best-fit decreasing into ``--max-len`` sequences) and
  ``padding_free=True``, ``--rows`` packed sequences per step.
* Trainer+padding: every example padded to ``--max-len``, ``--rows`` examples per batch.
* sftdata: ``sftdata.finetune.finetune`` with packing and a token budget of rows x max-len (a
  batch's packed rows joined padding-free, attention per example, fused LoRA layers).

After training each side scores the same examples (mean cross-entropy over the reply tokens, no
dropout): the loss after the same tokens, showing the speed is not bought with another objective.
Each side runs in its own process, so its peak RSS (``ru_maxrss``; CUDA's allocator peak on a GPU)
is its own. Tokens are the non-pad tokens of the examples. ``--rounds N`` runs every side N times,
the order reversed every other round, and compares median speeds and the highest peaks: a shared
machine's swings then hit both sides alike. Prints one summary line per peer:

    finetune: sftdata X tok/s (peak P MB, loss L) vs TRL SFTTrainer packing Y tok/s (...): Zx tokens/s, memory Mx

Target: >= 1.3x TRL's tokens/s with peak memory no higher. The embedded SmolLM2-135M-Instruct is
used when available, else (or with ``--tiny``) a small random Llama with the same tokenizer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _sides import add_shared_options, cpu_seconds, peak_mb, resolve_model, run_side  # noqa: E402
from summary import record  # noqa: E402

LR = 2e-4


def examples_for(tokenizer, count: int, max_len: int):
    from sftdata.finetune.data import load_rows, tokenize_records

    records = load_rows([ROOT / "seeds" / "en.jsonl"])[:count]
    report = tokenize_records(tokenizer, records, max_len)
    return records, report.examples


def reply_loss(model, examples, bf16: bool) -> float:
    """Mean cross-entropy over the reply tokens of ``examples`` (what every side trains on)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), torch.autocast("cuda" if torch.cuda.is_available() else "cpu", dtype=torch.bfloat16,
                                         enabled=bf16):
        device = next(model.parameters()).device
        for example in examples:
            logits = model(input_ids=torch.tensor([example.input_ids], device=device)).logits[0, :-1].float()
            labels = torch.tensor(example.labels[1:], device=device)
            mask = labels != -100
            total += torch.nn.functional.cross_entropy(logits[mask], labels[mask], reduction="sum").item()
            count += int(mask.sum())
    return round(total / count, 4)


def run_sftdata(args: argparse.Namespace) -> dict:
    from peft import PeftModel
    from transformers import AutoTokenizer

    from sftdata.core.records import write_jsonl
    from sftdata.finetune.runtime import load_base
    from sftdata.finetune.train import FinetuneConfig, finetune

    tokenizer = AutoTokenizer.from_pretrained(args.base_model)  # the stage loads the model itself
    records, examples = examples_for(tokenizer, args.examples, args.max_len)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.jsonl"
        write_jsonl(data, records)
        cpu0 = cpu_seconds()
        summary = finetune(FinetuneConfig(
            data=[str(data)], out=str(Path(tmp) / "out"), base_model=args.base_model, epochs=1, lr=LR,
            max_len=args.max_len, batch_tokens=args.rows * args.max_len, eval_split=0.0, packing=True,
            precision=args.precision, progress=False, seed=0,
            warmup_ratio=0.0, min_lr_ratio=1.0,  # a constant lr, as the Trainer sides get
            gradient_checkpointing=args.gradient_checkpointing))
        cpu = cpu_seconds() - cpu0
        peak = peak_mb()  # before the scoring below loads a second copy of the model
        import torch

        base, _, _ = load_base(args.base_model, dtype=torch.bfloat16 if summary["bf16"] else torch.float32)
        loss = reply_loss(PeftModel.from_pretrained(base, str(Path(tmp) / "out")), examples, summary["bf16"])
    assert summary["real_tokens"] == sum(len(e) for e in examples)
    return {"seconds": summary["train_seconds"], "cpu_seconds": cpu, "steps": summary["steps"],
            "real_tokens": summary["real_tokens"], "trained_tokens": summary["trained_tokens"],
            "bf16": summary["bf16"], "peak": peak, "loss": loss}


def lora_model(args: argparse.Namespace):
    """The base as sftdata holds it (bf16 frozen weights when training in bf16), with the same LoRA."""
    import torch
    from peft import LoraConfig, get_peft_model

    from sftdata.finetune.runtime import load_base, pick_device, use_bf16

    bf16 = use_bf16(args.precision, pick_device(0))
    model, tokenizer, _ = load_base(args.base_model, dtype=torch.bfloat16 if bf16 else torch.float32)
    # peft keeps the adapter weights in fp32 over a bf16 base (autocast_adapter_dtype), as sftdata does
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.0,
                                             target_modules="all-linear"))
    return model, tokenizer, bf16


def training_args(cls, args: argparse.Namespace, out: str, bf16: bool, **extra):
    import torch

    return cls(output_dir=out, per_device_train_batch_size=args.rows, num_train_epochs=1, learning_rate=LR,
               lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0,
               weight_decay=0.0, bf16=bf16, use_cpu=not torch.cuda.is_available(), report_to=[],
               save_strategy="no", logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0, seed=0,
               # SFTConfig turns it on by default, TrainingArguments and sftdata do not: every side the same
               gradient_checkpointing=args.gradient_checkpointing, **extra)


def loop_timer():
    """A callback timing the training loop alone (on_train_begin .. on_train_end), as sftdata does."""
    from transformers import TrainerCallback

    class LoopTimer(TrainerCallback):
        seconds = cpu = 0.0

        def on_train_begin(self, *_, **__):
            self._start, self._cpu = time.perf_counter(), cpu_seconds()

        def on_train_end(self, *_, **__):
            self.seconds, self.cpu = time.perf_counter() - self._start, cpu_seconds() - self._cpu

    return LoopTimer()


def run_baseline(args: argparse.Namespace) -> dict:
    import torch
    from transformers import Trainer, TrainingArguments

    model, tokenizer, bf16 = lora_model(args)
    _, examples = examples_for(tokenizer, args.examples, args.max_len)
    pad = tokenizer.pad_token_id
    rows = [{"input_ids": e.input_ids + [pad] * (args.max_len - len(e)),
             "attention_mask": [1] * len(e) + [0] * (args.max_len - len(e)),
             "labels": e.labels + [-100] * (args.max_len - len(e))} for e in examples]
    timer = loop_timer()
    with tempfile.TemporaryDirectory() as tmp:
        config = training_args(TrainingArguments, args, tmp, bf16)
        trainer = Trainer(model=model, args=config, train_dataset=rows, callbacks=[timer],
                          data_collator=lambda batch: {k: torch.tensor([b[k] for b in batch]) for k in batch[0]})
        result = trainer.train()
    peak = peak_mb()
    return {"seconds": timer.seconds, "cpu_seconds": timer.cpu, "steps": result.global_step,
            "real_tokens": sum(len(e) for e in examples), "trained_tokens": sum(e.n_trainable for e in examples),
            "padded_tokens": len(rows) * args.max_len, "bf16": bf16, "peak": peak,
            "loss": reply_loss(model, examples, bf16)}


def run_trl(args: argparse.Namespace) -> dict:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer, bf16 = lora_model(args)
    _, examples = examples_for(tokenizer, args.examples, args.max_len)
    # pre-tokenized: TRL skips its own rendering; completion_mask puts the loss on the reply tokens only
    data = Dataset.from_list([{"input_ids": e.input_ids,
                               "completion_mask": [0 if label == -100 else 1 for label in e.labels]}
                              for e in examples])
    timer = loop_timer()
    with tempfile.TemporaryDirectory() as tmp:
        config = training_args(SFTConfig, args, tmp, bf16,
                               packing=True, padding_free=True, max_length=args.max_len,
                               completion_only_loss=True, dataset_num_proc=None)
        trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                             callbacks=[timer])
        result = trainer.train()
    peak = peak_mb()
    return {"seconds": timer.seconds, "cpu_seconds": timer.cpu, "steps": result.global_step,
            "real_tokens": sum(len(e) for e in examples), "trained_tokens": sum(e.n_trainable for e in examples),
            "bf16": bf16, "peak": peak, "loss": reply_loss(model, examples, bf16)}


def summarize(runs: list[dict]) -> dict:
    """One side over its rounds: the median speeds, the highest peak memory, the first run's rest."""
    import statistics

    merged = dict(runs[0])
    for key in ("tokens_per_s", "tokens_per_cpu_s"):
        merged[key] = statistics.median(run[key] for run in runs)
    merged["peak"] = {key: max(run["peak"][key] for run in runs) for key in runs[0]["peak"]}
    return merged


def child(side: str, args: argparse.Namespace) -> dict:
    return run_side(__file__, side, args, ("examples", "max_len", "rows", "precision"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--max-len", type=int, default=512)
    parser.add_argument("--rows", type=int, default=4, help="Baseline examples per batch; sftdata's token "
                                                          "budget is rows x max-len.")
    add_shared_options(parser, "TRL's SFTConfig")
    parser.add_argument("--side", choices=["sftdata", "trl", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--peers", default="trl,trainer",
                        help="Peers to run, comma-separated: trl (TRL SFTTrainer, the target), trainer "
                             "(Trainer+padding; ~3x the compute of the others: skip it on a slow machine).")
    parser.add_argument("--rounds", type=int, default=1,
                        help="Run every side this many times, alternating the order; ratios use each side's "
                             "median speed and highest peak memory.")
    parser.add_argument("--json", action="store_true", help="Also print both sides' measurements as JSON.")
    args = parser.parse_args()
    if args.side:  # a child process: one side, one JSON line
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        result = {"sftdata": run_sftdata, "trl": run_trl, "baseline": run_baseline}[args.side](args)
        print(json.dumps(result))
        return

    model = resolve_model(args)
    print(f"model: {model}; {args.examples} examples of seeds/en.jsonl, max-len {args.max_len}, "
          f"{args.rows} rows/batch (sftdata: token budget rows x max-len, packed; TRL: rows packed "
          f"sequences of max-len, padding-free; Trainer: rows padded to max-len); LoRA r16/a32 all-linear, "
          f"lr {LR} constant, 1 epoch; precision {args.precision}; gradient checkpointing "
          f"{'on' if args.gradient_checkpointing else 'off'} on every side; {args.rounds} round(s)", file=sys.stderr)
    peers = {"trl": ("TRL SFTTrainer packing", "trl", 1.3), "trainer": ("Trainer+padding", "baseline", 2.0)}
    chosen = [peers[name.strip()] for name in args.peers.split(",") if name.strip()]
    runs: dict[str, list[dict]] = {}
    order = [("sftdata", "sftdata"), *((name, side) for name, side, _ in chosen)]
    for round_ in range(args.rounds):  # back to back, the order reversed every other round
        for name, side_name in (order if round_ % 2 == 0 else order[::-1]):
            side = child(side_name, args)
            side["tokens_per_s"] = side["real_tokens"] / side["seconds"]
            side["tokens_per_cpu_s"] = side["real_tokens"] / side["cpu_seconds"]
            runs.setdefault(name, []).append(side)
            print(f"{name:23s} {side['real_tokens']} tokens ({side['trained_tokens']} trained) in {side['steps']} "
                  f"steps, {side['seconds']:.1f}s wall / {side['cpu_seconds']:.1f}s CPU: {side['tokens_per_s']:.1f} "
                  f"tok/s, peak {side['peak']}, bf16={side['bf16']}, reply loss after the epoch {side['loss']} "
                  f"(1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
                  file=sys.stderr, flush=True)
    sides = {name: summarize(side_runs) for name, side_runs in runs.items()}
    ours = sides["sftdata"]
    memory_key = "cuda_mb" if "cuda_mb" in ours["peak"] else "rss_mb"
    if args.json:
        print(json.dumps({"sides": sides, "model": model}, indent=2))
    for peer, _, target in chosen:
        base = sides[peer]
        ratio = ours["tokens_per_s"] / base["tokens_per_s"]
        cpu_ratio = ours["tokens_per_cpu_s"] / base["tokens_per_cpu_s"]
        memory = ours["peak"][memory_key] / base["peak"][memory_key]
        print(f"finetune: sftdata {ours['tokens_per_s']:.1f} tok/s (peak {ours['peak'][memory_key]:.0f} MB, "
              f"loss {ours['loss']}) vs {peer} {base['tokens_per_s']:.1f} tok/s (peak "
              f"{base['peak'][memory_key]:.0f} MB, loss {base['loss']}): {ratio:.2f}x tokens/s "
              f"({cpu_ratio:.2f}x per CPU second), memory {memory:.2f}x (target >= {target}x, memory <= 1x)")
        record("finetune", peer, "tokens/s", ratio, target, f"memory {memory:.2f}x")


if __name__ == "__main__":
    main()
