"""Generation throughput of the embedded engine against the peers a user would pick, in one run.

Peers, on the same checkpoint (the plain HF directory the embedded backend builds from the GGUF),
the same prompts, max_new_tokens and sampling settings, all in float32 on this CPU:

* ``transformers serve --continuous-batching`` (the real server from the transformers package, on
  CPU, offline) hosting the model, sent the prompts through its OpenAI-compatible endpoint at the
  engine's batch size as concurrency. Target: engine >= 1.5x its tokens/s.
* plain ``model.generate``, one prompt at a time, same model object and dtype. Target: >= 12x.

Like for like in time: the sides run back to back in rounds, in alternating order (engine, serve,
model.generate; then the reverse), so load drifting on a shared machine falls on all of them; each
side's rate is its tokens over its seconds summed across rounds. Every side uses ``--threads``
torch threads: the engine through ``SFTDATA_THREADS`` (its measuring thread chooser off), this
process's ``torch.set_num_threads`` for model.generate, and ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``
in the server's environment (torch's default intra-op thread count); the run prints how many
threads of each process were busy, as a check.

The server samples only if the model's generation config says so: transformers' continuous batching
takes ``do_sample`` from it and builds temperature/top-p processors only for settings it has, and
SmolLM2's sets none, so a stock server answers temperature-0.7 requests greedily. For the sampling
mode the server therefore hosts a copy of the directory (weights linked, not copied) whose
generation config is ``do_sample``, temperature 0.7, top_p 0.9 and top_k 0 (none, as the engine); the stock directory in
greedy mode. The run checks that the server's sampled replies differ from its greedy ones.

Timed spans: the engine's ``generate`` (renders and tokenizes the requests), the server from the
first request sent to the last reply read (it tokenizes each request), the baseline's chat template
and generate per prompt. In greedy mode the engine's tokens are compared with ``model.generate``'s.
Prints one line per peer and mode:

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
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from functools import partial
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
SERVE = "transformers serve --continuous-batching"
GENERATE = "model.generate one at a time"


def make_prompts(n: int) -> list[str]:
    return [TASKS[i % len(TASKS)].format(TOPICS[(i * 5 + i // len(TASKS)) % len(TOPICS)]) for i in range(n)]


Side = Callable[[], tuple[int, float, list[str]]]  # () -> (tokens, seconds, texts)


def run_engine(engine: Engine, prompts: list[str], max_new: int, params: dict) -> tuple[int, float, list[str]]:
    requests = [Request.chat(p, max_tokens=max_new, seed=i, **params) for i, p in enumerate(prompts)]
    started = time.perf_counter()
    completions = engine.generate(requests)  # renders and tokenizes the requests: inside the timed span
    seconds = time.perf_counter() - started
    assert len(completions) == len(prompts) and all(c.ok for c in completions)
    return sum(c.usage.completion_tokens for c in completions), seconds, [c.text for c in completions]


def run_baseline(model, tokenizer, prompts: list[str], max_new: int, params: dict) -> tuple[int, float, list[str]]:
    """Plain transformers generation, one prompt at a time (what a simple script does)."""
    sampling = params["temperature"] > 0
    extra = {"do_sample": True, "temperature": params["temperature"], "top_p": params["top_p"], "top_k": 0} \
        if sampling else {"do_sample": False}
    tokens, seconds, texts = 0, 0.0, []
    for i, prompt in enumerate(prompts):
        torch.manual_seed(i)
        started = time.perf_counter()
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=max_new, pad_token_id=tokenizer.pad_token_id, **extra)
        seconds += time.perf_counter() - started
        tokens += out.shape[1] - ids["input_ids"].shape[1]
        texts.append(tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
    return tokens, seconds, texts


# ---------------------------------------------------------------- CPU accounting (Linux /proc)

def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``transformers serve`` runs its model in a spawned child process)."""
    import psutil

    try:
        return [pid] + [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def thread_cpu(pid: int) -> dict[tuple[int, int], float]:
    """CPU seconds (user + system) so far of every thread of ``pid`` (with its descendants, unless it is this
    process: the server is our child); empty where /proc is missing."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for process in [pid] if pid == os.getpid() else process_tree(pid):
        for task in Path(f"/proc/{process}/task").glob("*"):
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the thread ended
            seconds[(process, int(task.name))] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


def signal_tree(pid: int, signum: int) -> None:
    for process in process_tree(pid):
        os.kill(process, signum)


def busy_threads(before: dict, after: dict, wall: float, share: float = 0.25) -> int:
    """Threads that used at least ``share`` of a core over ``wall`` seconds."""
    return sum(1 for tid, cpu in after.items() if cpu - before.get(tid, 0.0) >= share * wall)


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


def served_model_dir(model_dir: Path, mode: str, scratch: Path) -> Path:
    """The directory the server hosts in ``mode`` (see the module docstring): the model's own for greedy,
    for sampling a copy (weights linked) whose generation config samples with the bench's settings."""
    if mode == "greedy":
        return model_dir
    target = scratch / f"{model_dir.name}-sampling"
    target.mkdir(exist_ok=True)
    for item in model_dir.iterdir():
        if item.name != "generation_config.json" and not (target / item.name).exists():
            (target / item.name).symlink_to(item.resolve())
    config = json.loads((model_dir / "generation_config.json").read_text())
    config.update(do_sample=True, top_k=0, **MODES[mode])  # top_k 0: no top-k step
    (target / "generation_config.json").write_text(json.dumps(config, indent=2))
    return target


def start_serve(model_dir: Path, port: int, cache: list[str], log: Path, threads: int,
                timeout: float = 600.0) -> subprocess.Popen:
    """``transformers serve --continuous-batching`` on CPU, offline, the model preloaded; waits for /health.

    Its stderr goes to ``log`` (a pipe nobody reads would block the server once full)."""
    command = [str(Path(sys.executable).with_name("transformers")), "serve", "--continuous-batching", "--device", "cpu",
               "--dtype", str(inference_dtype()).removeprefix("torch."), *cache, "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", str(model_dir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
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


class Server:
    """The peer server for one mode, started (untimed) and warmed up; ``side`` runs the bench's prompts."""

    def __init__(self, args: argparse.Namespace, mode: str, scratch: Path) -> None:
        self.args, self.mode = args, mode
        self.model = str(served_model_dir(embedded_model_dir(), mode, scratch))
        self.cache = cache_flags(args.batch_size, args.max_new_tokens)
        self.log = scratch / f"serve-{mode}.log"
        started = time.perf_counter()
        self.proc = start_serve(Path(self.model), args.port, self.cache, self.log, args.threads,
                                timeout=args.serve_timeout)
        self.url = f"http://127.0.0.1:{args.port}"
        run_serve(self.url, self.model, make_prompts(2), 4, MODES[mode], args.batch_size)  # warm up, untimed
        self.ready_s = time.perf_counter() - started

    def side(self, prompts: list[str]) -> tuple[int, float, list[str]]:
        return run_serve(self.url, self.model, prompts, self.args.max_new_tokens, MODES[self.mode],
                         self.args.batch_size)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


# ---------------------------------------------------------------- the comparison

class Tally:
    """One side's tokens and seconds over the rounds, its first round's texts, its busy-thread counts."""

    def __init__(self, name: str, pid: int) -> None:
        self.name, self.pid = name, pid
        self.tokens, self.seconds, self.texts, self.busy = 0, 0.0, [], []
        self.idle_cpu: dict[str, float] = {}  # CPU seconds this side's process spent while others ran

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


def run_rounds(sides: dict[str, tuple[Side, int]], rounds: int) -> dict[str, Tally]:
    """Each side once per round, the order reversed every other round; CPU accounting around each run."""
    tallies = {name: Tally(name, pid) for name, (_, pid) in sides.items()}
    names = list(sides)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            before = {other.name: thread_cpu(other.pid) for other in tallies.values()}
            tokens, seconds, texts = sides[name][0]()
            tally = tallies[name]
            tally.tokens += tokens
            tally.seconds += seconds
            tally.texts = tally.texts or texts
            tally.busy.append(busy_threads(before[name], thread_cpu(tally.pid), seconds))
            for other in tallies.values():  # a process that should be idle while this side runs
                if other.pid != tally.pid:
                    spent = sum(thread_cpu(other.pid).values()) - sum(before[other.name].values())
                    other.idle_cpu[name] = other.idle_cpu.get(name, 0.0) + spent
        print(f"  round {r + 1}/{rounds} done, 1-min load average {os.getloadavg()[0]:.2f}", flush=True)
    return tallies


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


def sides_pid(tallies: dict[str, Tally], name: str) -> int:
    return tallies[name].pid


def report_mode(mode: str, tallies: dict[str, Tally], tokenizer, args: argparse.Namespace,
                greedy_serve_texts: list[str] | None) -> bool:
    """The ratio lines of one mode (and the summary records); True when the --min-ratio check fails."""
    engine = tallies["engine"]
    for tally in tallies.values():
        idle = ", ".join(f"{cpu:.1f} s during {side}" for side, cpu in tally.idle_cpu.items()
                         if sides_pid(tallies, side) != tally.pid)
        print(f"  {mode} {tally.name}: {tally.tokens} tokens in {tally.seconds:.1f} s over {args.rounds} rounds; "
              f"busy threads per round {tally.busy}; its process's CPU while the other process ran: "
              f"{idle or '-'}", flush=True)
    failed = False
    targets = {SERVE: 1.5, GENERATE: 12.0}
    for peer in (p for p in (SERVE, GENERATE) if p in tallies):
        ratio = engine.rate / tallies[peer].rate
        print(f"local_generate {mode}: engine {engine.rate:.1f} tok/s, {peer} {tallies[peer].rate:.1f} tok/s, "
              f"ratio {ratio:.2f}x (target >= {targets[peer]:g}x)", flush=True)
        record("local_generate", peer.replace(" one at a time", ", one prompt at a time"), f"tokens/s, {mode}",
               ratio, targets[peer])
        failed |= mode == "sampling" and peer == GENERATE and ratio < args.min_ratio
    if mode == "greedy" and GENERATE in tallies:
        for name in ("engine", SERVE):
            if name in tallies:
                same, share = token_agreement(tokenizer, tallies[name].texts, tallies[GENERATE].texts)
                print(f"  greedy agreement of {name} with model.generate: {same}/{len(engine.texts)} replies "
                      f"identical, {share:.1%} of tokens before the first difference", flush=True)
    if mode == "sampling" and SERVE in tallies and greedy_serve_texts is not None:
        differ = sum(a != b for a, b in zip(tallies[SERVE].texts, greedy_serve_texts))
        print(f"  the server sampled: {differ}/{len(greedy_serve_texts)} of its temperature-0.7 replies differ "
              f"from its greedy ones", flush=True)
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16, help="prompts per mode (every side)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16, help="engine batch size = server concurrency")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads on every side")
    parser.add_argument("--rounds", type=int, default=2, help="back-to-back rounds per mode, order alternating")
    parser.add_argument("--modes", default="greedy,sampling")
    parser.add_argument("--min-ratio", type=float, default=0.0, help="exit 1 if the sampling ratio is below")
    parser.add_argument("--no-serve", action="store_true", help="skip the transformers serve peer")
    parser.add_argument("--no-generate", action="store_true", help="skip the model.generate baseline")
    parser.add_argument("--port", type=int, default=8766, help="port for transformers serve")
    parser.add_argument("--serve-timeout", type=float, default=900.0, help="seconds to wait for the server")
    args = parser.parse_args()

    os.environ["SFTDATA_THREADS"] = str(args.threads)  # the engine's thread chooser then keeps this count
    torch.set_num_threads(args.threads)
    engine = Engine(*load_for_inference(None, None), batch_size=args.batch_size, model_name="SmolLM2-135M-Instruct")
    model, tokenizer = load_model_and_tokenizer(dtype=inference_dtype())  # the same checkpoint, same dtype
    prompts = make_prompts(args.prompts)
    run_engine(engine, prompts[:2], 4, MODES["sampling"])  # warm up (first oneDNN calls pick kernels), untimed
    run_baseline(model, tokenizer, prompts[:1], 4, MODES["sampling"])
    print(f"settings: {args.prompts} prompts x {args.max_new_tokens} new tokens, dtype {model.dtype}, "
          f"engine batch = server concurrency {args.batch_size}, {args.threads} torch threads every side, "
          f"{args.rounds} rounds per mode; engine forward {engine.forward.name}; "
          f"1-min load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    failed, greedy_serve_texts = False, None
    scratch = Path(tempfile.mkdtemp(prefix="local-generate-"))
    try:
        for mode in args.modes.split(","):
            params = MODES[mode]
            sides: dict[str, tuple[Side, int]] = {
                "engine": (partial(run_engine, engine, prompts, args.max_new_tokens, params), os.getpid())}
            server = None
            if not args.no_serve:
                try:
                    server = Server(args, mode, scratch)
                except (RuntimeError, OSError) as exc:
                    print(f"local_generate: {SERVE} not measured: {exc}", flush=True)
                    failed = True
                else:
                    print(f"peer ({mode}): {SERVE} --device cpu {' '.join(server.cache)}, hosting "
                          f"{server.model}, OMP_NUM_THREADS={args.threads} (ready in {server.ready_s:.1f} s)",
                          flush=True)
                    sides[SERVE] = (partial(server.side, prompts), server.proc.pid)
            if not args.no_generate:
                sides[GENERATE] = (partial(run_baseline, model, tokenizer, prompts, args.max_new_tokens, params),
                                   os.getpid())
            try:
                tallies = run_rounds(sides, args.rounds)
            finally:
                if server is not None:
                    server.stop()
            failed |= report_mode(mode, tallies, tokenizer, args, greedy_serve_texts)
            if mode == "greedy" and SERVE in tallies:
                greedy_serve_texts = tallies[SERVE].texts
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
