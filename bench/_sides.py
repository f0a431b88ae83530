"""What the training benches (``finetune.py``, ``dpo.py``) share: each side runs in a child process
of its own, so its peak RSS is its own, and reports one JSON line; the model both sides train."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def add_shared_options(parser: argparse.ArgumentParser, checkpointing_default_of: str) -> None:
    """--precision, --gradient-checkpointing, --base-model and --tiny, as every training bench takes them."""
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help=f"Recompute activations on every side ({checkpointing_default_of} default; off by "
                             "default here, as in sftdata).")
    parser.add_argument("--base-model", help="A local HF model directory (default: the embedded model).")
    parser.add_argument("--tiny", action="store_true", help="Use a tiny random Llama (fast, for a smoke run).")


def peak_mb() -> dict:
    """This process's peak RSS, and CUDA's allocator peak on a GPU."""
    import torch

    peak = {"rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if torch.cuda.is_available():
        peak["cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peak


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_side(script: str, side: str, args: argparse.Namespace, options: tuple[str, ...]) -> dict:
    """Run ``script --side SIDE`` in a child process with the parsed ``options`` (``max_len`` is
    passed as ``--max-len``), --base-model and --gradient-checkpointing; its last stdout line is the
    side's JSON."""
    cmd = [sys.executable, script, "--side", side, "--base-model", args.base_model]
    for name in options:
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.gradient_checkpointing:
        cmd += ["--gradient-checkpointing"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        sys.exit(f"{side} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def resolve_model(args: argparse.Namespace) -> str:
    """Set ``args.base_model`` (the embedded SmolLM2 unless given, or with ``--tiny`` a small random
    Llama) and return its name for the report."""
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
