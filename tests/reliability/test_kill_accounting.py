"""What a SIGKILLed run paid, and who may write its directory (issue 22, points 1-3). Real
``sftdata generate`` processes (forked by forkserver.py), killed with SIGKILL, against the loopback server."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers_rel import (
    ROOT,
    OpenAIServer,
    cache_keys,
    cli_env,
    generate_args,
    generate_model,
    rows,
    run_main,
    stats_of,
)
from test_crash_resume import ForkServer, exited

PRICE = 1000.0  # USD per million tokens, in and out: a request costs about a dollar


@pytest.fixture(scope="module")
def forkserver(tmp_path_factory):
    server = ForkServer(tmp_path_factory.mktemp("forkserver"))
    yield server
    server.close()


class Billing:
    """The server's side of the bill: the usage it reported for every reply it sent."""

    def __init__(self) -> None:
        self.model = generate_model()
        self.usd = 0.0
        self._lock = threading.Lock()

    def __call__(self, body: dict, n: int) -> object:
        reply = self.model(body, n)
        text = reply if isinstance(reply, str) else reply.text
        prompt = sum(len(m.get("content", "")) for m in body.get("messages", []))
        with self._lock:  # the usage openai_server.py reports for this reply
            self.usd += ((prompt // 4 + 1) + (len(text) // 4 + 1)) * PRICE / 1e6
        return reply


def kill_repeatedly(forkserver: ForkServer, server: OpenAIServer, args: list[str], home: Path, kills: int,
                    seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(kills):
        before = server.count
        pid = forkserver.start(args, home)
        deadline = time.monotonic() + 30
        while server.count < before + rng.randint(2, 12) and not exited(pid) and time.monotonic() < deadline:
            time.sleep(0.002)
        os.kill(pid, signal.SIGKILL)
        assert forkserver.wait(pid) == -signal.SIGKILL, "finished before the kill: make the run longer"


def test_request_log_lists_every_paid_answer_after_kills(tmp_path, make_server, seeds, forkserver):
    server = make_server(reply=generate_model(), latency=0.03)
    out = tmp_path / "run"
    args = generate_args(seeds, out, server.url, "--round-size", "4", num=60)
    kill_repeatedly(forkserver, server, args, tmp_path, kills=8, seed=1)
    assert forkserver.run(args, tmp_path) == 0, forkserver.last_stderr.read_text()[-2000:]
    log = rows(out / "requests.jsonl")
    logged_ok = {r["key"] for r in log if r["outcome"] == "ok"}
    answered = {key[:16] for key in cache_keys(out / "cache.sqlite")}  # every answer the client received
    missing = answered - logged_ok
    assert not missing, f"{len(missing)} paid answers never logged as ok"
    # only requests in flight at a kill (concurrency 4) can be paid without the client seeing the answer
    assert sum(r["outcome"] == "ok" for r in log) >= server.count - 8 * 4


def test_spend_counts_what_was_paid_across_kills_and_stays_under_max_cost(tmp_path, make_server, seeds,
                                                                           forkserver):
    billing = Billing()
    server = make_server(reply=billing, latency=0.03)
    out = tmp_path / "run"
    max_cost = 150.0
    args = generate_args(seeds, out, server.url, "--round-size", "4", "--price-in", str(PRICE), "--price-out",
                         str(PRICE), "--max-cost", str(max_cost), num=500)
    kill_repeatedly(forkserver, server, args, tmp_path, kills=6, seed=2)
    assert forkserver.run(args, tmp_path) == 0, forkserver.last_stderr.read_text()[-2000:]
    assert "budget reached" in forkserver.last_stderr.read_text()
    llm = stats_of(out)["llm"]
    reported = llm.get("paid_cost_usd", llm["cost_usd"])
    assert billing.usd <= max_cost, f"the server billed ${billing.usd:.2f} against --max-cost {max_cost}"
    assert reported >= billing.usd - 1e-6, f"stats.json says ${reported:.2f}, the server billed ${billing.usd:.2f}"
    assert llm.get("paid_requests", llm["sent"]) >= server.count


def test_a_second_process_on_the_same_run_directory_exits_2_naming_the_holder(tmp_path, make_server, seeds,
                                                                                forkserver):
    server = make_server(reply=generate_model(), latency=0.05)
    out = tmp_path / "run"
    args = generate_args(seeds, out, server.url, "--round-size", "2", num=40)
    first = forkserver.start(args, tmp_path)
    deadline = time.monotonic() + 30
    while server.count < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert forkserver.run(args, tmp_path) == 2  # at once, while the first one works
    stderr = forkserver.last_stderr.read_text()
    assert f"in use by another sftdata process (pid {first} " in stderr and "--out" in stderr, stderr
    os.kill(first, signal.SIGKILL)  # the kernel drops a dead process's lock: the next run takes it
    assert forkserver.wait(first) == -signal.SIGKILL
    assert forkserver.run(args, tmp_path) == 0, forkserver.last_stderr.read_text()[-2000:]
    ids = [r["id"] for r in rows(out / "accepted.jsonl")]
    assert ids and len(ids) == len(set(ids))


_HOLD = """
import sys, time
from sftdata.core.lock import DirLock
locks = [DirLock(path) for path in sys.argv[1:]]
print("held", flush=True)
sys.stdin.read()
"""


def test_every_writing_stage_and_run_refuse_a_locked_directory(tmp_path, seeds):
    """filter, clean, export and `sftdata run` take the same lock (held here by another process)."""
    commands = {"filter": [str(seeds)], "clean": [str(seeds)], "export": [str(seeds)]}
    config = tmp_path / "pipe.yaml"
    config.write_text(f"seeds: {seeds}\n", encoding="utf-8")
    commands["run"] = [str(config)]
    outs = {name: tmp_path / name for name in commands}
    for out in outs.values():
        out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, *map(str, outs.values())], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=cli_env(tmp_path), cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        for name in ("filter", "clean", "export"):
            result = run_main(name, *commands[name], "--out", str(outs[name]), home=tmp_path)
            assert result.returncode == 2 and f"pid {holder.pid} " in result.stderr, (name, result.stderr)
        result = run_main("run", str(config), "--out", str(outs["run"]), "--no-progress", home=tmp_path)
        assert result.returncode == 2 and f"pid {holder.pid} " in result.stderr, result.stderr
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert run_main("filter", str(seeds), "--out", str(outs["filter"]), home=tmp_path).returncode == 0  # released
