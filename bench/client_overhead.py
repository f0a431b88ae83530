"""Client overhead of the openai-compatible LLM layer against the loopback server (in its own process).

1. Zero server latency: requests/s through the full LLM layer (the SDK's headers and errors, retries
   with their timeout, cache keys, spend ledger and request log; cache off) against two bare clients
   at the same concurrency, in the same run: raw aiohttp POSTs (the transport the layer uses,
   sftdata/llm/transport.py, so the like-for-like peer: the ratio is what the layer's own work
   costs) and raw httpx POSTs (the SDK's default transport). Targets: >= 500
   requests/s, and >= 0.5x the bare aiohttp client (the layer's own work at most doubles the cost
   of a request on loopback, where nothing else hides it).
2. 50 ms server latency at concurrency 64: achieved requests/s against the ideal (64 / 0.05 s).
   Target: efficiency >= 0.9. The same measurement with a bare aiohttp client (no SDK, no cache
   keys, no log) in the same run shows how much of the shortfall is this machine rather than the
   layer: both processes share its cores. Each figure is the median of --repeat runs of 1,280
   requests (20 round trips per connection, first connections included), and again over 6,400
   (100 round trips) for the steady state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx2 as httpx  # the SDK's default transport

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from summary import record  # noqa: E402

from sftdata.core.rundir import RunDir  # noqa: E402
from sftdata.llm.base import Request  # noqa: E402
from sftdata.llm.client import LLMConfig, make_llm  # noqa: E402


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "openai_server.py"), "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


async def llm_layer(url: str, n: int, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        llm = make_llm(LLMConfig(base_urls=[url], model="m", concurrency=concurrency, cache=False), RunDir(tmp))
        reqs = [Request.chat(f"prompt {i}", seed=i, max_tokens=16) for i in range(n)]
        started = time.perf_counter()
        out = await llm.complete(reqs)
        seconds = time.perf_counter() - started
        await llm.aclose()
    assert all(c.ok for c in out)
    return n / seconds


async def raw_httpx(url: str, n: int, concurrency: int) -> float:
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def one(i: int) -> None:
            async with semaphore:
                body = {"model": "m", "messages": [{"role": "user", "content": f"prompt {i}"}], "max_tokens": 16}
                response = await client.post(f"{url}/chat/completions", content=json.dumps(body),
                                             headers={"content-type": "application/json"})
                response.json()["choices"][0]["message"]["content"]
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - started)


async def raw_aiohttp(url: str, n: int, concurrency: int) -> float:
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(i: int) -> None:
            async with semaphore:
                body = {"model": "m", "messages": [{"role": "user", "content": f"prompt {i}"}], "max_tokens": 16}
                async with session.post(f"{url}/chat/completions", data=json.dumps(body),
                                        headers={"content-type": "application/json"}) as response:
                    json.loads(await response.read())["choices"][0]["message"]["content"]
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - started)


def median_rate(client, url: str, n: int, concurrency: int, repeat: int) -> float:
    return statistics.median(asyncio.run(client(url, n, concurrency)) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="requests in the zero-latency runs")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each 50 ms measurement (median)")
    args = parser.parse_args()

    proc, url = start_server(0.0)
    try:
        asyncio.run(llm_layer(url, 100, 32))  # warm up
        ours = asyncio.run(llm_layer(url, args.n, 32))
        asyncio.run(raw_aiohttp(url, 100, 32))  # the same warm-up for the bare clients
        bare = asyncio.run(raw_aiohttp(url, args.n, 32))
        base = asyncio.run(raw_httpx(url, args.n, 32))
    finally:
        proc.terminate()
    print(f"zero latency, concurrency 32, {args.n} requests, max_tokens 16, loopback server in its own process: "
          f"sftdata LLM layer (aiohttp with the SDK's headers and errors, cache off, request log on) {ours:.0f} req/s; "
          f"bare aiohttp client {bare:.0f} req/s: ratio {ours / bare:.2f}x (target >= 0.5x); raw httpx "
          f"{base:.0f} req/s: ratio {ours / base:.2f}x (target >= 500 req/s: {'PASS' if ours >= 500 else 'FAIL'})")
    record("client_overhead", "bare aiohttp client, zero latency", "requests/s", ours / bare, 0.5)
    record("client_overhead", "raw httpx client, zero latency", "requests/s", ours / base, 0.5)
    record("client_overhead", "500 req/s (absolute)", "requests/s / 500", ours / 500, 1.0)

    latency, concurrency = 0.05, 64
    ideal = concurrency / latency
    proc, url = start_server(latency)
    try:
        for n in (1280, 6400):
            repeat = args.repeat if n == 1280 else 1
            layer = median_rate(llm_layer, url, n, concurrency, repeat) / ideal
            bare = median_rate(raw_aiohttp, url, n, concurrency, repeat) / ideal
            verdict = f" (target >= 0.9: {'PASS' if layer >= 0.9 else 'FAIL'})" if n == 1280 else ""
            print(f"50 ms latency, concurrency 64, {n} requests: efficiency {layer:.2f} of ideal {ideal:.0f} req/s"
                  f"{verdict}; bare aiohttp client {bare:.2f}; layer/bare ratio {layer / bare:.2f}")
            if n == 1280:
                record("client_overhead", "ideal (64 / 50 ms), 50 ms latency", "efficiency", layer, 0.9,
                       f"bare aiohttp {bare:.2f}")
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
