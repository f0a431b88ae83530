"""Crash and resume: ``sftdata generate`` killed with SIGKILL at 20 random moments, interrupted with
SIGINT, and left with journals whose last line was cut mid-write. Each time, re-running the same
command finishes the run as if nothing had happened: the same files as one uninterrupted run, no
duplicate or lost record, and no request whose answer was already stored is paid for again.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_rel import (
    ROOT,
    OpenAIServer,
    Recorder,
    body_key,
    cache_keys,
    check_generate_accounting,
    cli_env,
    generate_args,
    generate_model,
    outputs,
    rows,
    run_main,
    spawn_cli,
    stats_of,
)

KILLS = 20
CONCURRENCY = 4


class ForkServer:
    """Client of ``forkserver.py``: starts ``sftdata`` commands as forked children, reaps them."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("forkserver.py"))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=cli_env(home), cwd=ROOT)
        assert "ready" in self._read()
        self.runs = 0

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, "the fork server died"
        return json.loads(line)

    def _send(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def start(self, args: list[str], home: Path) -> int:
        self.runs += 1
        logs = home / "logs"
        logs.mkdir(exist_ok=True)
        self.last_stderr = logs / f"{self.runs}.err"
        return self._send({"run": args, "env": {"SFTDATA_HOME": str(home)},
                           "stdout": str(logs / f"{self.runs}.out"), "stderr": str(self.last_stderr)})["pid"]

    def wait(self, pid: int) -> int:
        return self._send({"wait": pid})["status"]

    def run(self, args: list[str], home: Path) -> int:
        return self.wait(self.start(args, home))

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def forkserver(tmp_path_factory):
    server = ForkServer(tmp_path_factory.mktemp("forkserver"))
    yield server
    server.close()


def exited(pid: int) -> bool:
    """The forked child has finished (a zombie until the fork server reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def reference_run(tmp_path: Path, make_server, args_for) -> tuple[Path, OpenAIServer]:
    server = make_server(reply=generate_model())
    out = tmp_path / "reference"
    result = run_main(*args_for(out, server.url), home=tmp_path)
    assert result.returncode == 0, result.stderr
    return out, server


def test_twenty_sigkills_then_resume_equal_one_uninterrupted_run(tmp_path, make_server, seeds, forkserver):
    def args_for(out: Path, url: str) -> list[str]:
        return generate_args(seeds, out, url, "--round-size", "2", "--concurrency", str(CONCURRENCY), num=150)

    reference, ref_server = reference_run(tmp_path, make_server, args_for)
    server = make_server(reply=generate_model(), latency=0.03)  # stretches the work the kills land in
    out = tmp_path / "run"
    rng = random.Random(20)
    snapshots: list[tuple[int, set[str]]] = []  # (requests received at the kill, cache keys at the kill)
    moments = []
    for _ in range(KILLS):
        before = server.count
        pid = forkserver.start(args_for(out, server.url), tmp_path)
        deadline = time.monotonic() + 30
        while server.count == before and not exited(pid) and time.monotonic() < deadline:
            time.sleep(0.002)  # the child is working once it sends its first new request
        delay = rng.uniform(0.0, 0.35)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        status = forkserver.wait(pid)
        assert status == -signal.SIGKILL, f"finished before kill {len(moments) + 1}: make the run longer"
        moments.append(round(delay, 3))
        snapshots.append((server.count, cache_keys(out / "cache.sqlite")))
    status = forkserver.run(args_for(out, server.url), tmp_path)
    assert status == 0, forkserver.last_stderr.read_text()[-2000:]

    # the same files as one uninterrupted run: nothing lost, nothing duplicated
    assert outputs(out) == outputs(reference)
    ids = [r["id"] for r in rows(out / "accepted.jsonl")]
    assert ids and len(ids) == len(set(ids))
    check_generate_accounting(out, single_run=False)
    assert stats_of(out)["finished"] is True
    # no request whose answer was stored before a kill was sent again after it
    keys = [body_key(b) for b in server.bodies]
    for mark, cached in snapshots:
        resent = set(keys[mark:]) & cached
        assert not resent, f"{len(resent)} cached requests sent again after a kill"
    # what a kill costs: only the requests in flight at that moment are sent again
    extra = len(keys) - ref_server.count
    assert set(keys) == {body_key(b) for b in ref_server.bodies}
    assert 0 <= extra <= KILLS * CONCURRENCY, (extra, moments)
    print(f"\n{KILLS} kills at {moments} s after work began; {len(keys)} requests vs {ref_server.count} "
          f"uninterrupted ({extra} re-sent: in flight at a kill)")


def test_kill_in_a_long_batch_pays_again_only_for_requests_in_flight(tmp_path, make_server, seeds, forkserver):
    """A round's instance requests go out as one batch. Killed when half of the batch is answered,
    the restarted run must find those answers in the cache, not buy them again."""
    def args_for(out: Path, url: str) -> list[str]:
        return generate_args(seeds, out, url, "--round-size", "6", "--concurrency", "2", num=20)

    recorder = Recorder(generate_model())
    server = make_server(reply=recorder, latency=0.05)
    out = tmp_path / "run"
    pid = forkserver.start(args_for(out, server.url), tmp_path)

    def instance_requests() -> int:
        return sum("Write examples for the task" in b["messages"][-1]["content"] or
                   "Class label:" in b["messages"][-1]["content"] for b in list(recorder.bodies))

    deadline = time.monotonic() + 30
    while instance_requests() < 8 and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    assert forkserver.wait(pid) == -signal.SIGKILL
    answered = [body_key(b) for b in recorder.bodies]
    mark = len(answered)
    assert forkserver.run(args_for(out, server.url), tmp_path) == 0
    again = [k for k in (body_key(b) for b in recorder.bodies[mark:]) if k in set(answered)]
    assert len(again) <= 2, f"{len(again)} answered requests paid for again (concurrency 2)"


def test_sigint_saves_state_exits_130_and_resume_finishes(tmp_path, make_server, seeds):
    """Ctrl-C on a real ``python -m sftdata`` process."""
    def args_for(out: Path, url: str) -> list[str]:
        return generate_args(seeds, out, url, "--round-size", "2", num=30)

    reference, _ = reference_run(tmp_path, make_server, args_for)
    server = make_server(reply=generate_model(), latency=0.05)
    out = tmp_path / "run"
    proc = spawn_cli(*args_for(out, server.url), home=tmp_path)
    deadline = time.monotonic() + 60
    while len(rows(out / "checkpoints.jsonl")) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "interrupted (state saved; re-run the same command to resume)"
    saved = rows(out / "checkpoints.jsonl")
    assert len(saved) >= 2 and stats_of(out)["finished"] is False
    result = run_main(*args_for(out, server.url), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert outputs(out) == outputs(reference)


def test_journal_lines_cut_mid_write_are_repaired_on_resume(tmp_path, make_server, seeds):
    """A crash while writing: the last checkpoint, a record and the request log each end in half a line."""
    def args_for(out: Path, url: str) -> list[str]:
        return generate_args(seeds, out, url, "--round-size", "2", num=12)

    reference, _ = reference_run(tmp_path, make_server, args_for)
    server = make_server(reply=generate_model())
    out = tmp_path / "run"
    stopped = run_main(*args_for(out, server.url), "--max-requests", "20", home=tmp_path)
    assert stopped.returncode == 0 and "budget reached" in stopped.stderr  # state saved mid-run
    checkpoints = (out / "checkpoints.jsonl").read_bytes().splitlines(keepends=True)
    assert len(checkpoints) >= 2
    (out / "checkpoints.jsonl").write_bytes(b"".join(checkpoints[:-1]) + checkpoints[-1][: len(checkpoints[-1]) // 2])
    accepted = (out / "accepted.jsonl").read_bytes()
    (out / "accepted.jsonl").write_bytes(accepted + accepted.splitlines(keepends=True)[0][:40])
    with open(out / "requests.jsonl", "ab") as fh:
        fh.write(b'{"key": "0123456789abcdef", "tag": "generate:instr')
    cached = cache_keys(out / "cache.sqlite")
    mark = server.count

    result = run_main(*args_for(out, server.url), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert outputs(out) == outputs(reference)
    for name in ("checkpoints.jsonl", "accepted.jsonl", "requests.jsonl"):
        for line in (out / name).read_text(encoding="utf-8").splitlines():
            json.loads(line)  # every line whole again
    resent = [b for b in server.bodies[mark:] if body_key(b) in cached]
    assert not resent, f"{len(resent)} cached requests sent again"


def test_rerun_of_a_finished_run_sends_nothing_and_changes_nothing(tmp_path, make_server, seeds):
    server = make_server(reply=generate_model())
    out = tmp_path / "run"
    args = generate_args(seeds, out, server.url, num=6)
    assert run_main(*args, home=tmp_path).returncode == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.jsonl") if p.name != "requests.jsonl"}
    count = server.count
    assert run_main(*args, home=tmp_path).returncode == 0
    after = {p.name: p.read_bytes() for p in out.glob("*.jsonl") if p.name != "requests.jsonl"}
    assert server.count == count and after == before
