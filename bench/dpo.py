"""DPO throughput: sftdata's ``--method dpo`` against TRL's ``DPOTrainer``, in one run.

Both sides train the same model with the same LoRA config (all linear layers, r=16, alpha=32,
dropout 0), beta 0.1, sigmoid loss, the same learning rate, precision and reference (the base,
adapters disabled), for one epoch over the same pairs: the first ``--pairs`` records of
``seeds/en.jsonl`` (real instructions), each with its own output as ``chosen`` and the output of
another record as ``rejected``, in TRL's conversational preference format.

* TRL: ``DPOTrainer`` with its defaults (reference log-probs by a second forward pass every step,
  prompt+chosen and prompt+rejected as two right-padded sequences, its fused LM head),
  ``--rows`` pairs per batch. ``--trl-precompute`` also runs it with ``precompute_ref_log_probs``.
* sftdata: ``sftdata.finetune.train.finetune(method="dpo")``: each pair one packed segment
  ``[prompt | chosen | rejected]`` (the prompt computed once), reference log-probs in one no-grad
  pass before training (counted in its time), a token budget of about ``--rows`` pairs per batch.

Timed span: TRL's ``trainer.train()``; sftdata's reference pass + training loop (model loading and
tokenizing excluded on both sides). Tokens are counted the way TRL processes them: prompt + chosen
plus prompt + rejected, non-pad, per pair (so both sides do the same data work per token). Each side
runs in its own process, so its peak RSS (CUDA's allocator peak on a GPU) is its own. The machine
may be shared, so the ratio is also given per CPU second. Prints one summary line:

    dpo: sftdata X tok/s (peak P MB) vs TRL DPOTrainer Y tok/s (peak Q MB): Zx tokens/s, memory Mx

Target: >= 1.5x tokens/s with memory no higher.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _sides import add_shared_options, cpu_seconds, peak_mb, resolve_model, run_side  # noqa: E402

LR = 5e-5
LORA = dict(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear")


def pair_rows(count: int) -> list[dict]:
    """TRL conversational rows from seeds/en.jsonl: chosen = the record's output, rejected = the next one's."""
    from sftdata.core.records import read_all

    records = [r for r in read_all([ROOT / "seeds" / "en.jsonl"]) if r.output.strip()][: count + 1]
    rows = []
    for record, other in zip(records, records[1:] + records[:1]):
        user = record.instruction + ("\n\n" + record.input if record.input else "")
        rows.append({"prompt": [{"role": "user", "content": user}],
                     "chosen": [{"role": "assistant", "content": record.output}],
                     "rejected": [{"role": "assistant", "content": other.output}]})
    return rows[:count]


def run_sftdata(args: argparse.Namespace) -> dict:
    from transformers import AutoTokenizer

    from sftdata.core.records import write_jsonl
    from sftdata.finetune.preference import pair_from_obj, tokenize_pairs
    from sftdata.finetune.train import FinetuneConfig, finetune

    rows = pair_rows(args.pairs)
    tokenizer = AutoTokenizer.from_pretrained(args.base_model)
    examples = tokenize_pairs(tokenizer, [pair_from_obj(r) for r in rows], args.max_len).examples
    assert len(examples) == len(rows), "a pair was dropped: raise --max-len"
    mean_pair = sum(len(e) for e in examples) / len(examples)
    batch_tokens = max(2 * args.max_len, math.ceil(args.rows * mean_pair))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        write_jsonl(data, rows)
        cpu0 = cpu_seconds()
        summary = finetune(FinetuneConfig(
            data=[str(data)], out=str(Path(tmp) / "out"), base_model=args.base_model, method="dpo", epochs=1,
            lr=LR, max_len=args.max_len, batch_tokens=batch_tokens, eval_split=0.0, precision=args.precision,
            progress=False, seed=0, lora_r=LORA["r"], lora_alpha=LORA["lora_alpha"], beta=0.1,
            gradient_checkpointing=args.gradient_checkpointing))
        cpu = cpu_seconds() - cpu0
    tokens = sum(2 * len(e.prompt_ids) + len(e.chosen_ids) + len(e.rejected_ids) for e in examples)
    return {"seconds": summary["train_seconds"] + summary["reference_seconds"], "cpu_seconds": cpu,
            "reference_seconds": summary["reference_seconds"], "steps": summary["steps"], "pairs": len(examples),
            "tokens": tokens, "computed_tokens": summary["real_tokens"], "bf16": summary["bf16"],
            "batch_tokens": batch_tokens, "peak": peak_mb()}


def run_trl(args: argparse.Namespace, precompute: bool) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from sftdata.finetune.data import prepare_tokenizer
    from sftdata.finetune.runtime import load_base, pick_device, use_bf16

    bf16 = use_bf16(args.precision, pick_device(0))
    model, tokenizer, _ = load_base(args.base_model)  # fp32 weights, autocast bf16 where chosen, as ours
    prepare_tokenizer(tokenizer)
    rows = pair_rows(args.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        config = DPOConfig(output_dir=tmp, per_device_train_batch_size=args.rows, num_train_epochs=1,
                           learning_rate=LR, lr_scheduler_type="cosine", max_grad_norm=1.0,
                           warmup_steps=round(0.05 * math.ceil(len(rows) / args.rows)),
                           beta=0.1, loss_type=["sigmoid"], max_length=None, bf16=bf16,
                           use_cpu=not torch.cuda.is_available(), report_to=[], save_strategy="no",
                           logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0, seed=0,
                           precompute_ref_log_probs=precompute,
                           # DPOConfig turns it on by default, sftdata does not: every side the same
                           gradient_checkpointing=args.gradient_checkpointing)
        trainer = DPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                             processing_class=tokenizer, peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA))
        dataset = trainer.train_dataset
        tokens = sum(2 * len(p) + len(c) + len(r) for p, c, r in
                     zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"]))
        cpu0, start = cpu_seconds(), time.perf_counter()
        result = trainer.train()
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    return {"seconds": seconds, "cpu_seconds": cpu, "steps": result.global_step, "pairs": len(dataset),
            "tokens": tokens, "bf16": bf16, "peak": peak_mb()}


def child(side: str, args: argparse.Namespace) -> dict:
    return run_side(__file__, side, args, ("pairs", "max_len", "rows", "precision"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=512, help="Longest prompt + reply, in tokens.")
    parser.add_argument("--rows", type=int, default=4, help="TRL's pairs per batch; sftdata's token budget "
                                                          "holds about as many pairs.")
    add_shared_options(parser, "TRL's DPOConfig")
    parser.add_argument("--trl-precompute", action="store_true",
                        help="Also run TRL with precompute_ref_log_probs=True.")
    parser.add_argument("--side", choices=["sftdata", "trl", "trl-precompute"], help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="Also print every side's measurements as JSON.")
    args = parser.parse_args()
    if args.side:  # a child process: one side, one JSON line
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        result = run_sftdata(args) if args.side == "sftdata" else run_trl(args, args.side == "trl-precompute")
        print(json.dumps(result))
        return

    model = resolve_model(args)
    print(f"model: {model}; {args.pairs} pairs from seeds/en.jsonl, max-len {args.max_len}, {args.rows} "
          f"pairs/batch; precision {args.precision}", file=sys.stderr)
    sides = {"sftdata": child("sftdata", args), "trl": child("trl", args)}
    if args.trl_precompute:
        sides["trl-precompute"] = child("trl-precompute", args)
    for name, side in sides.items():
        side["tokens_per_s"] = side["tokens"] / side["seconds"]
        side["tokens_per_cpu_s"] = side["tokens"] / side["cpu_seconds"]
        print(f"{name:15s} {side['pairs']} pairs, {side['tokens']} tokens in {side['steps']} steps, "
              f"{side['seconds']:.1f}s wall / {side['cpu_seconds']:.1f}s CPU: {side['tokens_per_s']:.1f} tok/s, "
              f"peak {side['peak']}, bf16={side['bf16']}", file=sys.stderr)
    ours, trl = sides["sftdata"], sides["trl"]
    memory_key = "cuda_mb" if "cuda_mb" in ours["peak"] else "rss_mb"
    ratio = ours["tokens_per_s"] / trl["tokens_per_s"]
    cpu_ratio = ours["tokens_per_cpu_s"] / trl["tokens_per_cpu_s"]
    memory = ours["peak"][memory_key] / trl["peak"][memory_key]
    if args.json:
        print(json.dumps({**sides, "ratio": ratio, "cpu_ratio": cpu_ratio, "memory_ratio": memory,
                          "model": model}, indent=2))
    print(f"dpo: sftdata {ours['tokens_per_s']:.1f} tok/s (peak {ours['peak'][memory_key]:.0f} MB) vs "
          f"TRL DPOTrainer {trl['tokens_per_s']:.1f} tok/s (peak {trl['peak'][memory_key]:.0f} MB): "
          f"{ratio:.2f}x tokens/s ({cpu_ratio:.2f}x per CPU second), memory {memory:.2f}x")


if __name__ == "__main__":
    main()
