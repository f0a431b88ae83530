"""Generation throughput of the embedded engine against the peers a user would pick, in one run.

Peers, on the same checkpoint (the plain HF directory the embedded backend builds from the GGUF),
the same prompts, max_new_tokens and sampling settings:

* ``transformers serve --continuous-batching`` (the real server from the transformers package, on
  CPU, offline) hosting the model, sent the prompts through its OpenAI-compatible endpoint at the
  engine's batch size as concurrency. Target: engine >= 1.5x its tokens/s.
* plain ``model.generate``, one prompt at a time, same model object and dtype. Target: >= 12x.

Tokenization is inside the timed span on every side: the engine's ``generate`` renders and
tokenizes the requests, the server tokenizes each request, the baseline's chat template is timed.
Two modes: sampling (temperature 0.7, top_p 0.9) and greedy; in greedy mode the engine's tokens are
compared with ``model.generate``'s (they should agree except where near-ties flip in low precision).
Prints one line per peer:

    local_generate sampling: engine X tok/s, <peer> Y tok/s, ratio Z.ZZx

``--min-ratio R`` makes the script exit 1 below R against model.generate with sampling.
Needs the embedded model (dequantized on first use into $SFTDATA_HOME, ~30 s once), and for the
server peer FastAPI (``pip install 'sftdata[bench]'``); ``--no-serve`` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from summary import record  # noqa: E402

from sftdata.llm.base import Request  # noqa: E402
from sftdata.llm.local.embedded import embedded_model_dir, inference_dtype, load_model_and_tokenizer  # noqa: E402
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


def run_engine(engine: Engine, prompts: list[str], max_new: int, params: dict) -> tuple[int, float, float, list[str]]:
    requests = [Request.chat(p, max_tokens=max_new, seed=i, **params) for i, p in enumerate(prompts)]
    started, cpu = time.perf_counter(), time.process_time()
    completions = engine.generate(requests)  # renders and tokenizes the requests: inside the timed span
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(completions) == len(prompts) and all(c.ok for c in completions)
    return sum(c.usage.completion_tokens for c in completions), seconds, cpu, [c.text for c in completions]


def run_baseline(model, tokenizer, prompts: list[str], max_new: int, params: dict,
                 threads: ThreadChooser) -> tuple[int, float, float, list[str]]:
    """Plain transformers generation, one prompt at a time (what a simple script does).

    It gets the same thread choice as the engine (measured, see sftdata.llm.local.threads): with two
    threads on a core another process holds, it would run 10x slower and flatter the ratio.
    """
    sampling = params["temperature"] > 0
    extra = {"do_sample": True, "temperature": params["temperature"], "top_p": params["top_p"]} if sampling \
        else {"do_sample": False}
    tokens, seconds, cpu, texts = 0, 0.0, 0.0, []
    for i, prompt in enumerate(prompts):
        torch.manual_seed(i)
        threads.maybe_adjust()
        started, cpu_started = time.perf_counter(), time.process_time()
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=max_new, pad_token_id=tokenizer.pad_token_id, **extra)
        seconds += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        tokens += out.shape[1] - ids["input_ids"].shape[1]
        texts.append(tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
    threads.restore()
    return tokens, seconds, cpu, texts


# ---------------------------------------------------------------- the peer server

PAGE_TOKENS = 256  # transformers' continuous-batching page size (its default)


def cache_flags(concurrency: int, max_new: int, prompt_tokens: int = 64) -> list[str]:
    """A KV cache sized for the bench: ``concurrency`` requests of up to ``prompt_tokens + max_new`` tokens.

    Left to itself, continuous batching on CPU reserves 60% of the machine's *total* RAM for its paged
    cache and attention masks (``max_memory_percent`` 0.6 of ``psutil.virtual_memory().total`` less its
    own RSS, ignoring what other processes hold): ~14 GB on this 24 GB VM, which the OOM killer or
    swap-less thrashing ends while the model "loads". Fixed sizes keep it to what the requests need.
    """
    pages_per_request = -(-(prompt_tokens + max_new) // PAGE_TOKENS)
    blocks = 2 * concurrency * pages_per_request  # twice the working set: headroom, as a user would give
    batch_tokens = max(512, concurrency * prompt_tokens)  # the whole first prefill fits in one batch
    return ["--cb-num-blocks", str(blocks), "--cb-max-batch-tokens", str(batch_tokens)]


def start_serve(model_dir: Path, port: int, cache: list[str], log: Path,
                timeout: float = 600.0) -> subprocess.Popen:
    """``transformers serve --continuous-batching`` on CPU, offline, the model preloaded; waits for /health.

    Its stderr goes to ``log`` (a pipe nobody reads would block the server once full)."""
    command = [str(Path(sys.executable).with_name("transformers")), "serve", "--continuous-batching", "--device", "cpu",
               "--dtype", str(inference_dtype()).removeprefix("torch."), *cache, "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", str(model_dir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log.open("w") as stderr:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"transformers serve exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            time.sleep(1.0)
    proc.kill()
    raise RuntimeError(f"transformers serve did not become healthy in {timeout:.0f} s: {log.read_text()[-2000:]}")


async def _serve_requests(url: str, model: str, prompts: list[str], max_new: int, params: dict,
                          concurrency: int) -> tuple[int, list[str]]:
    import aiohttp

    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(i: int, prompt: str) -> tuple[int, str]:
            body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_new,
                    "temperature": params["temperature"], "top_p": params["top_p"], "seed": i, "stream": False}
            async with semaphore, session.post(f"{url}/v1/chat/completions", json=body) as response:
                reply = json.loads(await response.read())
            if "choices" not in reply:
                raise RuntimeError(f"transformers serve: {str(reply)[:500]}")
            return reply["usage"]["completion_tokens"], reply["choices"][0]["message"]["content"]

        answers = await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
    return sum(n for n, _ in answers), [text for _, text in answers]


def run_serve(url: str, model: str, prompts: list[str], max_new: int, params: dict,
              concurrency: int) -> tuple[int, float, list[str]]:
    started = time.perf_counter()
    tokens, texts = asyncio.run(_serve_requests(url, model, prompts, max_new, params, concurrency))
    return tokens, time.perf_counter() - started, texts


def compare_with_serve(args: argparse.Namespace, prompts: list[str], engine_rates: dict[str, float]) -> bool:
    """The transformers serve peer, one line per mode; False (and why) when the server cannot run here."""
    model_dir = embedded_model_dir()
    started = time.perf_counter()
    cache = cache_flags(args.batch_size, args.max_new_tokens)
    log = Path(tempfile.mkstemp(prefix="transformers-serve-", suffix=".log")[1])
    try:
        server = start_serve(model_dir, args.port, cache, log, timeout=args.serve_timeout)
    except (RuntimeError, OSError) as exc:
        log.unlink(missing_ok=True)
        print(f"local_generate: transformers serve --continuous-batching not measured: {exc}", flush=True)
        return False
    url = f"http://127.0.0.1:{args.port}"
    try:
        run_serve(url, str(model_dir), prompts[:2], 4, MODES["sampling"], args.batch_size)  # warm up, untimed
        print(f"peer: transformers serve --continuous-batching --device cpu {' '.join(cache)} (ready in "
              f"{time.perf_counter() - started:.1f} s), concurrency {args.batch_size}", flush=True)
        for mode, engine_rate in engine_rates.items():
            s_tokens, s_seconds, _ = run_serve(url, str(model_dir), prompts, args.max_new_tokens, MODES[mode],
                                               args.batch_size)
            serve_rate = s_tokens / s_seconds
            print(f"local_generate {mode}: engine {engine_rate:.1f} tok/s, transformers serve "
                  f"--continuous-batching {serve_rate:.1f} tok/s ({s_tokens} tokens in {s_seconds:.1f} s, "
                  f"concurrency {args.batch_size}), ratio {engine_rate / serve_rate:.2f}x (target >= 1.5x)",
                  flush=True)
            record("local_generate", "transformers serve --continuous-batching", f"tokens/s, {mode}",
                   engine_rate / serve_rate, 1.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.unlink(missing_ok=True)
    return True


def token_agreement(tokenizer, ours: list[str], theirs: list[str]) -> tuple[int, float]:
    """(identical replies, share of tokens before the first difference) of two lists of greedy replies."""
    same, agreed, total = 0, 0, 0
    for a, b in zip(ours, theirs):
        ids_a, ids_b = tokenizer.encode(a, add_special_tokens=False), tokenizer.encode(b, add_special_tokens=False)
        prefix = next((k for k, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y), min(len(ids_a), len(ids_b)))
        same += ids_a == ids_b
        agreed += prefix
        total += max(len(ids_a), len(ids_b))
    return same, agreed / max(total, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32, help="prompts per mode (both sides)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32, help="engine batch size")
    parser.add_argument("--modes", default="sampling,greedy")
    parser.add_argument("--min-ratio", type=float, default=0.0, help="exit 1 if the sampling ratio is below")
    parser.add_argument("--no-serve", action="store_true", help="skip the transformers serve peer")
    parser.add_argument("--port", type=int, default=8766, help="port for transformers serve")
    parser.add_argument("--serve-timeout", type=float, default=900.0, help="seconds to wait for the server")
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

    settings = (f"{args.prompts} prompts x {args.max_new_tokens} new tokens, dtype {model.dtype}, "
                f"concurrency/batch {args.batch_size}")
    failed, engine_rates = False, {}
    for mode in args.modes.split(","):
        params = MODES[mode]
        e_tokens, e_seconds, e_cpu, e_texts = run_engine(engine, prompts, args.max_new_tokens, params)
        b_tokens, b_seconds, b_cpu, b_texts = run_baseline(model, tokenizer, prompts, args.max_new_tokens,
                                                           params, threads)
        engine_rate, base_rate = e_tokens / e_seconds, b_tokens / b_seconds
        engine_rates[mode] = engine_rate
        ratio = engine_rate / base_rate
        print(f"  {mode} {params}, {settings}: engine {e_tokens} tokens in {e_seconds:.1f} s, "
              f"model.generate {b_tokens} tokens in {b_seconds:.1f} s; per CPU-second "
              f"{e_tokens / e_cpu:.0f} vs {b_tokens / b_cpu:.0f} tokens; threads now {threads.choice} "
              f"(1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: above the core "
              f"count, other processes share the CPU)", flush=True)
        print(f"local_generate {mode}: engine {engine_rate:.1f} tok/s, model.generate one at a time "
              f"{base_rate:.1f} tok/s, ratio {ratio:.2f}x (target >= 12x)", flush=True)
        if mode == "sampling":
            record("local_generate", "model.generate, one prompt at a time", "tokens/s, sampling", ratio, 12.0)
            failed |= ratio < args.min_ratio
        if mode == "greedy":
            same, share = token_agreement(tokenizer, e_texts, b_texts)
            print(f"  greedy agreement with model.generate: {same}/{len(prompts)} replies identical, "
                  f"{share:.1%} of tokens before the first difference", flush=True)
    if not args.no_serve:
        # after the in-process sides, so the server's start (and its idle threads) never overlaps them
        failed |= not compare_with_serve(args, prompts, engine_rates)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
