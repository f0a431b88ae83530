"""``sftdata generate`` against a real OpenAI-compatible server: ``transformers serve`` hosting the
embedded SmolLM2-135M-Instruct (the plain HF directory the local backend dequantizes), offline on
127.0.0.1. The server is the one from the transformers package, not ours: its replies, usage fields
and errors are what a user of `transformers serve` would send sftdata."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(proc: subprocess.Popen, port: int, log: Path, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"transformers serve exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except OSError:
            time.sleep(1.0)
    pytest.fail(f"transformers serve was not healthy after {timeout:.0f} s: {log.read_text()[-2000:]}")


@pytest.mark.slow
def test_generate_against_transformers_serve(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")  # transformers' serving extra; `make test` installs it (sftdata[bench])
    from sftdata.llm.local.embedded import embedded_model_dir

    model = embedded_model_dir()
    port = free_port()
    log = tmp_path / "serve.log"
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [str(Path(sys.executable).with_name("transformers")), "serve", "--device", "cpu", "--dtype", "float32",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", str(model)]
    with log.open("w") as stderr:
        server = subprocess.Popen(command, env=offline, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_healthy(server, port, log)
        out = tmp_path / "run"
        env = {k: v for k, v in offline.items() if not k.startswith("OPENAI_")}
        args = ["generate", "--out", str(out), "--base-url", f"http://127.0.0.1:{port}/v1", "--model", str(model),
                "--num-instructions", "2", "--instructions-per-request", "3", "--instances-per-task", "1",
                "--round-size", "2", "--max-tokens", "96", "--temperature", "1.0", "--top-p", "0.95",
                "--concurrency", "2", "--timeout", "300", "--no-progress", "--json"]
        proc = subprocess.run([sys.executable, "-c", "from sftdata.cli import main; main()", *args],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=1200)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    assert proc.returncode == 0, proc.stderr[-3000:] + log.read_text()[-2000:]
    summary = json.loads(proc.stdout)
    llm = summary["llm"]
    assert llm["backend"] == "openai" and llm["failed"] == 0 and llm["succeeded"] >= 1, llm
    assert llm["completion_tokens"] > 0 and llm["prompt_tokens"] > 0  # the server's usage fields were read
    log_rows = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    assert log_rows and all(row["outcome"] == "ok" for row in log_rows)
    # the replies were parsed into instructions: accepted or rejected with a reason, never lost
    parsed = summary["instruction_filter"]["parsed"]
    assert parsed >= 1 and parsed == summary["instruction_filter"]["accepted"] + sum(
        v for k, v in summary["instruction_filter"].items() if k.startswith("rejected_"))
