"""Fine-tune throughput: sftdata's stage against a plain transformers ``Trainer`` + peft LoRA, in one run.

Both sides train the same model with the same LoRA config (all linear layers, r=16, alpha=32,
dropout 0), the same learning rate and schedule, the same precision, for one epoch over the
same examples: the first ``--examples`` records of ``seeds/en.jsonl`` (real instruction data,
151 tokens on average with SmolLM2's template), rendered and masked by
``sftdata.finetune.data`` so both see identical token ids and labels.

* baseline: ``Trainer`` with every example padded to ``--max-len`` (``padding="max_length"``),
  ``--rows`` examples per batch, loss over the full vocabulary at every position.
* sftdata: ``sftdata.finetune.finetune`` with packing and a token budget of rows x max-len.

Each side runs in its own process, so its peak RSS (``ru_maxrss``; CUDA's allocator peak on a
GPU) is its own. Tokens are the non-pad tokens of the examples (prompt + reply; the trained
reply tokens are counted too). The machine may be shared, so the ratio is given both in wall
seconds and in CPU seconds of each process. Prints one summary line:

    finetune: sftdata X tok/s (peak P MB) vs Trainer+padding Y tok/s (peak Q MB): Zx tokens/s, memory Mx

Target: >= 2x tokens/s, peak memory no higher. The embedded SmolLM2-135M-Instruct is used when
available, else (or with ``--tiny``) a small random Llama with the same tokenizer.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LR = 2e-4


def examples_for(tokenizer, count: int, max_len: int):
    from sftdata.finetune.data import load_rows, tokenize_records

    records = load_rows([ROOT / "seeds" / "en.jsonl"])[:count]
    report = tokenize_records(tokenizer, records, max_len)
    return records, report.examples


def peak_mb() -> dict:
    import torch

    peak = {"rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if torch.cuda.is_available():
        peak["cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peak


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_sftdata(args: argparse.Namespace) -> dict:
    from transformers import AutoTokenizer

    from sftdata.core.records import write_jsonl
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
            precision=args.precision, progress=False, seed=0))
        cpu = cpu_seconds() - cpu0
    assert summary["real_tokens"] == sum(len(e) for e in examples)
    return {"seconds": summary["train_seconds"], "cpu_seconds": cpu, "steps": summary["steps"],
            "real_tokens": summary["real_tokens"], "trained_tokens": summary["trained_tokens"],
            "bf16": summary["bf16"], "peak": peak_mb()}


def run_baseline(args: argparse.Namespace) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    from sftdata.finetune.runtime import load_base, pick_device, use_bf16

    bf16 = use_bf16(args.precision, pick_device(0))
    model, tokenizer, _ = load_base(args.base_model)  # fp32 weights, as a plain Trainer run has
    _, examples = examples_for(tokenizer, args.examples, args.max_len)
    pad = tokenizer.pad_token_id
    rows = [{"input_ids": e.input_ids + [pad] * (args.max_len - len(e)),
             "attention_mask": [1] * len(e) + [0] * (args.max_len - len(e)),
             "labels": e.labels + [-100] * (args.max_len - len(e))} for e in examples]
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.0,
                                             target_modules="all-linear"))
    with tempfile.TemporaryDirectory() as tmp:
        training = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=args.rows, num_train_epochs=1, learning_rate=LR,
            lr_scheduler_type="cosine", warmup_steps=round(0.05 * -(-len(rows) // args.rows)), max_grad_norm=1.0, weight_decay=0.0,
            bf16=bf16, use_cpu=not torch.cuda.is_available(), report_to=[], save_strategy="no",
            logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0, seed=0)
        trainer = Trainer(model=model, args=training, train_dataset=rows,
                          data_collator=lambda batch: {k: torch.tensor([b[k] for b in batch]) for k in batch[0]})
        cpu0, start = cpu_seconds(), time.perf_counter()
        result = trainer.train()
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    return {"seconds": seconds, "cpu_seconds": cpu, "steps": result.global_step,
            "real_tokens": sum(len(e) for e in examples), "trained_tokens": sum(e.n_trainable for e in examples),
            "padded_tokens": len(rows) * args.max_len, "bf16": bf16, "peak": peak_mb()}


def child(side: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--side", side, "--examples", str(args.examples), "--max-len",
           str(args.max_len), "--rows", str(args.rows), "--precision", args.precision]
    if args.base_model:
        cmd += ["--base-model", args.base_model]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        sys.exit(f"{side} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def resolve_model(args: argparse.Namespace) -> str:
    if args.base_model:
        return args.base_model
    if not args.tiny:
        try:
            from sftdata.llm.local.embedded import embedded_model_dir

            args.base_model = str(embedded_model_dir())
            return "SmolLM2-135M-Instruct (embedded)"
        except Exception as exc:  # noqa: BLE001 - fall back, and say so
            print(f"embedded model unavailable ({exc}); using a tiny random Llama", file=sys.stderr)
    from sftdata.finetune.tiny import smollm2_tokenizer, tiny_llama_dir

    args.base_model = str(tiny_llama_dir(Path(tempfile.mkdtemp()) / "tiny", smollm2_tokenizer(),
                                         hidden=128, layers=4))
    return "tiny random Llama (hidden 128, 4 layers, SmolLM2 tokenizer)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--max-len", type=int, default=512)
    parser.add_argument("--rows", type=int, default=4, help="Baseline examples per batch; sftdata's token "
                                                          "budget is rows x max-len.")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--base-model", help="A local HF model directory (default: the embedded model).")
    parser.add_argument("--tiny", action="store_true", help="Use a tiny random Llama (fast, for a smoke run).")
    parser.add_argument("--side", choices=["sftdata", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="Also print both sides' measurements as JSON.")
    args = parser.parse_args()
    if args.side:  # a child process: one side, one JSON line
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        result = run_sftdata(args) if args.side == "sftdata" else run_baseline(args)
        print(json.dumps(result))
        return

    model = resolve_model(args)
    print(f"model: {model}; {args.examples} examples of seeds/en.jsonl, max-len {args.max_len}, "
          f"{args.rows} rows/batch; precision {args.precision}", file=sys.stderr)
    ours = child("sftdata", args)
    base = child("baseline", args)
    for name, side in (("sftdata", ours), ("baseline", base)):
        side["tokens_per_s"] = side["real_tokens"] / side["seconds"]
        side["tokens_per_cpu_s"] = side["real_tokens"] / side["cpu_seconds"]
        print(f"{name:9s} {side['real_tokens']} tokens ({side['trained_tokens']} trained) in {side['steps']} steps, "
              f"{side['seconds']:.1f}s wall / {side['cpu_seconds']:.1f}s CPU: {side['tokens_per_s']:.1f} tok/s, "
              f"peak {side['peak']}, bf16={side['bf16']}", file=sys.stderr)
    memory_key = "cuda_mb" if "cuda_mb" in ours["peak"] else "rss_mb"
    ratio = ours["tokens_per_s"] / base["tokens_per_s"]
    cpu_ratio = ours["tokens_per_cpu_s"] / base["tokens_per_cpu_s"]
    memory = ours["peak"][memory_key] / base["peak"][memory_key]
    if args.json:
        print(json.dumps({"sftdata": ours, "baseline": base, "ratio": ratio, "cpu_ratio": cpu_ratio,
                          "memory_ratio": memory, "model": model}, indent=2))
    print(f"finetune: sftdata {ours['tokens_per_s']:.1f} tok/s (peak {ours['peak'][memory_key]:.0f} MB) vs "
          f"Trainer+padding {base['tokens_per_s']:.1f} tok/s (peak {base['peak'][memory_key]:.0f} MB): "
          f"{ratio:.2f}x tokens/s ({cpu_ratio:.2f}x per CPU second), memory {memory:.2f}x")


if __name__ == "__main__":
    main()
