"""Generation throughput of the embedded engine against plain ``model.generate`` one prompt at a time.

Same model object (same dtype), same prompts, same max_new_tokens, in the same run. Two modes:
sampling (temperature 0.7, top_p 0.9) and greedy. Prints generated tokens/s of each and the ratio:

    local_generate sampling: engine X tok/s, baseline Y tok/s, ratio Z.ZZx

Target: ratio >= 12 with sampling. ``--min-ratio R`` makes the script exit 1 below R.
Needs the embedded model (dequantized on first use into $SFTDATA_HOME, ~30 s once).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from sftdata.llm.base import Request  # noqa: E402
from sftdata.llm.local.embedded import inference_dtype, load_model_and_tokenizer  # noqa: E402
from sftdata.llm.local.engine import Engine, load_for_inference  # noqa: E402
from sftdata.llm.local.threads import ThreadChooser  # noqa: E402

TASKS = [
    "Write a short story about {}.", "Explain {} to a ten-year-old.", "Give three tips about {}.",
    "Write a poem about {}.", "Describe {} in detail.", "List the pros and cons of {}.",
    "Write a product description for {}.", "What are common misconceptions about {}?",
]
TOPICS = [
    "the sea", "a city at night", "baking bread", "rivers", "winter", "libraries", "trains", "bees",
    "volcanoes", "chess", "coffee", "the moon", "gardening", "bicycles", "rain", "mountains",
]
MODES = {"sampling": {"temperature": 0.7, "top_p": 0.9}, "greedy": {"temperature": 0.0, "top_p": 1.0}}


def make_prompts(n: int) -> list[str]:
    return [TASKS[i % len(TASKS)].format(TOPICS[(i * 5 + i // len(TASKS)) % len(TOPICS)]) for i in range(n)]


def run_engine(engine: Engine, prompts: list[str], max_new: int, params: dict) -> tuple[int, float, float]:
    requests = [Request.chat(p, max_tokens=max_new, seed=i, **params) for i, p in enumerate(prompts)]
    started, cpu = time.perf_counter(), time.process_time()
    completions = engine.generate(requests)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(completions) == len(prompts) and all(c.ok for c in completions)
    return sum(c.usage.completion_tokens for c in completions), seconds, cpu


def run_baseline(model, tokenizer, prompts: list[str], max_new: int, params: dict,
                 threads: ThreadChooser) -> tuple[int, float, float]:
    """Plain transformers generation, one prompt at a time (what a simple script does).

    It gets the same thread choice as the engine (measured, see sftdata.llm.local.threads): with two
    threads on a core another process holds, it would run 10x slower and flatter the ratio.
    """
    sampling = params["temperature"] > 0
    extra = {"do_sample": True, "temperature": params["temperature"], "top_p": params["top_p"]} if sampling \
        else {"do_sample": False}
    tokens, seconds, cpu = 0, 0.0, 0.0
    for i, prompt in enumerate(prompts):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        torch.manual_seed(i)
        threads.maybe_adjust()
        started, cpu_started = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=max_new, pad_token_id=tokenizer.pad_token_id, **extra)
        seconds += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        tokens += out.shape[1] - ids["input_ids"].shape[1]
    threads.restore()
    return tokens, seconds, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32, help="prompts per mode (both sides)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32, help="engine batch size")
    parser.add_argument("--modes", default="sampling,greedy")
    parser.add_argument("--min-ratio", type=float, default=0.0, help="exit 1 if the sampling ratio is below")
    args = parser.parse_args()

    load_started = time.perf_counter()
    engine = Engine(*load_for_inference(None, None), batch_size=args.batch_size, model_name="SmolLM2-135M-Instruct")
    engine_load = time.perf_counter() - load_started
    # the baseline: the same checkpoint through transformers, in the same dtype
    model, tokenizer = load_model_and_tokenizer(dtype=inference_dtype())
    threads = ThreadChooser(model.dtype)
    print(f"engine ready in {engine_load:.1f} s ({engine.forward.name} forward); dtype {model.dtype}, "
          f"up to {torch.get_num_threads()} threads, {args.prompts} prompts x {args.max_new_tokens} new tokens, "
          f"engine batch {args.batch_size}", flush=True)
    prompts = make_prompts(args.prompts)
    # warm both paths up (first oneDNN calls pick kernels), untimed
    run_engine(engine, prompts[:2], 4, MODES["sampling"])
    run_baseline(model, tokenizer, prompts[:1], 4, MODES["sampling"], threads)

    failed = False
    for mode in args.modes.split(","):
        params = MODES[mode]
        e_tokens, e_seconds, e_cpu = run_engine(engine, prompts, args.max_new_tokens, params)
        b_tokens, b_seconds, b_cpu = run_baseline(model, tokenizer, prompts, args.max_new_tokens, params, threads)
        engine_rate, base_rate = e_tokens / e_seconds, b_tokens / b_seconds
        ratio = engine_rate / base_rate
        print(f"  {mode}: engine {e_tokens} tokens in {e_seconds:.1f} s, baseline {b_tokens} tokens in "
              f"{b_seconds:.1f} s; per CPU-second {e_tokens / e_cpu:.0f} vs {b_tokens / b_cpu:.0f} tokens; "
              f"threads now {threads.choice} (1-min load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores: above the core count, other processes share the CPU)", flush=True)
        print(f"local_generate {mode}: engine {engine_rate:.1f} tok/s, baseline {base_rate:.1f} tok/s, "
              f"ratio {ratio:.2f}x", flush=True)
        if mode == "sampling" and ratio < args.min_ratio:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
