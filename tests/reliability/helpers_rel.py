"""Helpers of the reliability suite: the real CLI in a subprocess, scripted models, accounting checks.

Every test here runs the real program (``python -m sftdata``) or the real library against the real
loopback server of ``tests/openai_server.py``; nothing is mocked. The accounting checks are the
issue's contract: requests sent = succeeded + failed, parsed items = accepted + rejected, and every
request shows up as an accepted or rejected row, a failure, or a counted empty reply.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# the scripted models of the integration tests: generate_replies (generate), test_augment.FakeModel (augment)
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from generate_replies import make_reply  # noqa: E402
from openai_server import OpenAIServer, Reply  # noqa: E402
from run_files import body_key, cache_keys  # noqa: E402
from run_files import read_rows as rows  # noqa: E402
from seed_tasks import SEEDS_EN  # noqa: E402
from seed_tasks import write_seeds as write_seed_file  # noqa: E402

# the English seeds of the generate tests less the two with multi-line or long outputs
SEED_TASKS = [task for task in SEEDS_EN if "\n" not in task[2] and not task[0].startswith("Explain")]
SEED_INSTRUCTIONS = [s[0] for s in SEED_TASKS]

AUGMENT_INPUTS = [
    {"instruction": "Write a haiku about rain.", "input": "", "output": "Rain on the roof.", "lang": "en"},
    {"instruction": "Explain how a bicycle gear works.", "input": "", "output": "Gears trade force for speed.",
     "lang": "en"},
    {"instruction": "Summarize the following text.", "input": "The council met on Monday and approved the new "
     "park budget.", "output": "The council approved the park budget.", "lang": "en"},
    {"instruction": "List three uses of bamboo.", "input": "", "output": "Flooring, scaffolding and food.",
     "lang": "en"},
]

# kept out of the child's environment: the test decides every setting itself
_SCRUBBED = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_LOG", "SFTDATA_MODEL", "SFTDATA_DEBUG")


def write_seeds(path: Path, seeds: list[tuple] = SEED_TASKS) -> Path:
    return write_seed_file(path, seeds)


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the CLI in a child process

def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env.update(PYTHONPATH=path, SFTDATA_HOME=str(home), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "sftdata", *args]


def run_cli(*args: str, home: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """``sftdata ARGS`` in a child process; returns its exit code, stdout and stderr."""
    return subprocess.run(cli_command(*args), capture_output=True, text=True, env=env or cli_env(home),
                          cwd=ROOT, timeout=timeout)


def spawn_cli(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(cli_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or cli_env(home), cwd=ROOT)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_main(*args: str, home: Path, env: dict[str, str] | None = None) -> Result:
    """``sftdata ARGS`` through the real entry point (``sftdata.cli.main``) in this process: the exit
    code it would exit with, and what it printed. Faster than a child process (no imports to pay),
    so the fault matrix can afford one run per fault; kills and signals use :func:`spawn_cli`."""
    from sftdata.cli import main

    saved = dict(os.environ)
    for name in _SCRUBBED:
        os.environ.pop(name, None)
    os.environ.update({"SFTDATA_HOME": str(home), **(env or {})})
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Result(code, out.getvalue(), err.getvalue())


# Runs a command as its child and reports the child's pid, then its exit code and peak RSS. A process's
# ru_maxrss counts the memory of the process it was forked from until it execs; from pytest (hundreds of
# MB of imports) that would swamp the figure, from this small launcher it adds ~10 MB at most.
_LAUNCHER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
print(json.dumps({"pid": child.pid}), flush=True)
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "maxrss_mb": usage.ru_maxrss / 1024}), flush=True)
"""


@dataclass
class Measured:
    returncode: int
    stderr: str
    seconds: float
    peak_rss_mb: float


def run_measured(args: list[str], home: Path, timeout: float = 120, env: dict[str, str] | None = None,
                 while_running: Callable[[int], None] | None = None) -> Measured:
    """``args`` (a full command line) as a grandchild: exit code, stderr, seconds, its own peak RSS.
    ``while_running(pid)`` is called with the command's pid while it runs (it may sample /proc/PID)."""
    started = time.monotonic()
    launcher = subprocess.Popen([sys.executable, "-c", _LAUNCHER, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env or cli_env(home), cwd=ROOT)
    try:
        pid = json.loads(launcher.stdout.readline())["pid"]
        if while_running is not None:
            while_running(pid)
        stdout, stderr = launcher.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        launcher.kill()
        raise
    report = json.loads(stdout.strip().splitlines()[-1])
    return Measured(report["code"], stderr, time.monotonic() - started, report["maxrss_mb"])


def generate_args(seeds: Path, out: Path, url: str, *extra: str, num: int = 8) -> list[str]:
    """A small, fast ``sftdata generate`` against the loopback server."""
    return ["generate", "--seeds", str(seeds), "--out", str(out), "--base-url", url, "--model", "test-model",
            "--num-instructions", str(num), "--instances-per-task", "3", "--no-progress", "--concurrency", "4",
            "--max-attempts", "4", "--retry-base", "0.01", "--timeout", "5", *extra]


def augment_args(inputs: Path, out: Path, url: str, *extra: str) -> list[str]:
    return ["augment", str(inputs), "--out", str(out), "--ops", "constraints,deepen,paraphrase",
            "--base-url", url, "--model", "test-model", "--no-progress", "--concurrency", "4",
            "--max-attempts", "4", "--retry-base", "0.01", "--timeout", "5", *extra]


# ---------------------------------------------------------------- reading a run directory

def stats_of(out: Path) -> dict:
    return json.loads((out / "stats.json").read_text(encoding="utf-8"))


def without_server_ids(items: list[dict]) -> list[dict]:
    """Rows without the ids a server hands out in arrival order (two servers, or a restarted one, differ)."""
    for row in items:
        for meta in (row.get("meta"), row.get("record", {}).get("meta")):
            if meta:
                meta.pop("request_ids", None)
                meta.pop("request_id", None)
    return items


def outputs(out: Path, names: tuple[str, ...] = ("accepted.jsonl", "rejected.jsonl", "instructions.jsonl")) -> dict:
    return {name: without_server_ids(rows(out / name)) for name in names}


def check_llm_accounting(out: Path, max_attempts: int, single_run: bool = True) -> dict:
    """stats.json's request counts add up, and (for a run made in one go) match the request log."""
    llm = stats_of(out)["llm"]
    assert llm["sent"] == llm["succeeded"] + llm["failed"], llm
    failures = rows(out / "failures.jsonl")
    if not single_run:
        return llm
    log = rows(out / "requests.jsonl")
    outcome = Counter("error" if r["outcome"].startswith("error:") else r["outcome"] for r in log)
    assert outcome["ok"] == llm["succeeded"] and outcome["error"] == llm["failed"], (outcome, llm)
    assert outcome["cached"] == llm["cached"]
    assert sum(r["attempts"] for r in log) == llm["attempts"]
    assert all(1 <= r["attempts"] <= max_attempts for r in log if r["outcome"] != "cached"), "unbounded retries"
    assert len(failures) == llm["failed"]
    for failure in failures:
        assert failure["error"] and failure["attempts"] >= 1 and failure["messages"], failure
    return llm


def check_generate_accounting(out: Path, max_attempts: int = 4, single_run: bool = True) -> dict:
    """Every parsed item of a generate run is accepted or rejected with a reason; every answered
    instruction request is referenced by a row or counted as an empty reply. Returns stats.json."""
    stats = stats_of(out)
    check_llm_accounting(out, max_attempts, single_run)
    accepted, rejected, pool = rows(out / "accepted.jsonl"), rows(out / "rejected.jsonl"), \
        rows(out / "instructions.jsonl")
    ids = [r["id"] for r in accepted]
    assert len(ids) == len(set(ids)), "duplicate records"
    levels: Counter[str] = Counter()
    for row in rejected:  # a rejection that came again is one row with its count (generate folds repeats)
        levels[row["detail"]["level"]] += row.get("count", 1)
    for level in ("instruction", "instance"):
        flt = stats[f"{level}_filter"]
        assert flt["parsed"] == flt["accepted"] + sum(v for k, v in flt.items() if k.startswith("rejected_")), flt
        assert flt["parsed"] - flt["accepted"] == levels[level], (level, flt, levels)
    assert stats["instance_filter"]["accepted"] == len(accepted) == stats["records"]
    for row in rejected:
        assert row["reason"] and row["stage"] == "generate", row
    if single_run:
        referenced = {r.get("request_key") for r in pool}
        referenced |= {r["record"]["meta"].get("request_key") for r in rejected}
        referenced |= {key for r in rejected for key in r.get("repeat_request_keys", [])}
        log = rows(out / "requests.jsonl")
        referenced |= {r["meta"].get("request_key") for r in accepted}
        answered = {r["key"] for r in log if r["outcome"] == "ok"
                    and r["tag"] in ("generate:instructions", "generate:alpaca")}
        silent = answered - referenced
        empty = stats["replies"].get("instructions_empty", 0) + stats["replies"].get("alpaca_empty", 0)
        assert answered and len(silent) == empty, f"{len(silent)} answered requests left no trace"
    return stats


def check_augment_accounting(out: Path, parents: int, ops: int, max_attempts: int = 4,
                             single_run: bool = True) -> dict:
    """Every (parent, op) work item of a one-round augment run is kept, eliminated with a reason,
    skipped, or failed with its request in failures.jsonl. Returns stats.json."""
    stats = stats_of(out)
    llm = check_llm_accounting(out, max_attempts, single_run)
    counts = stats["ops"]
    for op, c in counts.items():
        assert c["proposed"] == c["kept"] + c["failed"] + c["skipped"] + sum(c["eliminated"].values()), (op, c)
    if stats["finished"]:
        assert sum(c["proposed"] for c in counts.values()) == parents * ops
    accepted, rejected = rows(out / "accepted.jsonl"), rows(out / "rejected.jsonl")
    assert len(accepted) == sum(c["kept"] for c in counts.values())
    assert len(rejected) == sum(sum(c["eliminated"].values()) for c in counts.values())
    assert Counter(r["reason"] for r in rejected) == sum((Counter(c["eliminated"]) for c in counts.values()),
                                                         Counter())
    failed = sum(c["failed"] for c in counts.values())
    assert failed <= llm["failed"] and (failed == 0) == (llm["failed"] == 0 or not single_run)
    return stats


# ---------------------------------------------------------------- scripted models

class Recorder:
    """Wraps a reply function: records the arrival time and body of every request it answers, and may
    replace the reply of chosen arrivals (``plan(n, body) -> Reply | None``)."""

    def __init__(self, reply: Callable[[dict, int], Any],
                 plan: Callable[[int, dict], Reply | None] | None = None) -> None:
        self.reply = reply
        self.plan = plan
        self.times: list[float] = []
        self.bodies: list[dict] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict, n: int) -> Any:
        with self._lock:
            self.times.append(time.monotonic())
            self.bodies.append(body)
            number = len(self.times)
        if self.plan is not None:
            planned = self.plan(number, body)
            if planned is not None:
                return planned
        return self.reply(body, n)


def generate_model() -> Callable[[dict, int], Any]:
    return make_reply(SEED_INSTRUCTIONS, "en")


def stop_after(server_ref: list[OpenAIServer], count: int) -> Callable[[int, dict], Reply | None]:
    """A plan that stops the server (from another thread: its loop cannot stop itself) at arrival ``count``."""
    def plan(n: int, _body: dict) -> Reply | None:
        if n == count:
            threading.Thread(target=server_ref[0].stop, daemon=True).start()
        return None
    return plan


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


__all__ = ["OpenAIServer", "Reply", "Recorder", "rows", "stats_of", "outputs", "run_cli", "run_main", "Result", "run_measured", "Measured", "spawn_cli", "cli_command", "cli_env",
           "generate_args", "augment_args", "check_generate_accounting", "check_augment_accounting",
           "check_llm_accounting", "write_seeds", "write_rows", "generate_model", "stop_after", "free_port",
           "without_server_ids", "cache_keys", "body_key", "SEED_INSTRUCTIONS", "AUGMENT_INPUTS", "ROOT"]
