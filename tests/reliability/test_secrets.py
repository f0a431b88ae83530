"""Secrets: an API key given by flag, by environment or in a config file reaches the endpoint (the
server sees ``Authorization: Bearer KEY``) and nothing else: no file under the run directory or
SFTDATA_HOME (journals, cache, config.json, stats.json, stage markers), no stdout, no stderr, no
``--debug`` traceback, no error message, even when the endpoint echoes the key back in an error.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from helpers_rel import (
    OpenAIServer,
    Recorder,
    Reply,
    cli_env,
    generate_args,
    generate_model,
    run_cli,
    run_main,
)

MAX_ATTEMPTS = 4


def new_key() -> str:
    # not shaped like "sk-...": redaction must come from knowing the key, not from guessing its shape
    return "rel-" + secrets.token_hex(20)


def assert_nowhere(key: str, *texts: str, dirs: tuple[Path, ...]) -> int:
    """The key (or a 12-character piece of it, or a bearer header) appears in no text and no file."""
    needles = [key.encode(), key[4:16].encode(), key[-12:].encode(), b"Bearer "]
    for text in texts:
        for needle in needles:
            assert needle not in text.encode(), f"{needle!r} printed:\n{text[-2000:]}"
    scanned = 0
    for directory in dirs:
        for path in directory.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                scanned += 1
                for needle in needles:
                    assert needle not in data, f"{needle!r} written to {path}"
    assert scanned, "nothing was scanned"
    return scanned


def home(tmp_path: Path) -> Path:
    """SFTDATA_HOME of the run: scanned too (apart from it only the config file may hold the key)."""
    path = tmp_path / "home"
    path.mkdir(exist_ok=True)
    return path


def echoing_key(server_ref: list[OpenAIServer], numbers: set[int]):
    """Arrivals ``numbers`` get a 401 that quotes the key back, as real APIs do."""
    def plan(n: int, _body: dict) -> Reply | None:
        if n in numbers:
            auth = server_ref[0].auth_headers[-1]
            return Reply(status=401, text=f"Incorrect API key provided: {auth.removeprefix('Bearer ')}")
        return None
    return plan


def test_key_by_flag_with_failures_and_debug(tmp_path, make_server, seeds):
    key = new_key()
    ref: list[OpenAIServer] = []
    server = make_server(reply=Recorder(generate_model(), echoing_key(ref, {3})))
    ref.append(server)
    server.inject("500", count=MAX_ATTEMPTS)  # the first request fails for good: failures.jsonl
    out = tmp_path / "run"
    proc = run_cli("--debug", *generate_args(seeds, out, server.url, "--api-key", key, num=6), home=home(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert set(server.auth_headers) == {f"Bearer {key}"}  # the key was used
    failures = (out / "failures.jsonl").read_text()
    assert "Incorrect API key provided: ***" in failures  # the echo was recorded, redacted
    assert_nowhere(key, proc.stdout, proc.stderr, dirs=(out, home(tmp_path)))


def test_key_by_environment_on_exit_3_with_debug_and_sdk_logging(tmp_path, make_server, seeds):
    key = new_key()
    ref: list[OpenAIServer] = []
    server = make_server(reply=Recorder(generate_model(), echoing_key(ref, set(range(1, 1000)))))
    ref.append(server)
    out = tmp_path / "run"
    env = cli_env(home(tmp_path), OPENAI_API_KEY=key, OPENAI_LOG="debug")
    proc = run_cli("--debug", *generate_args(seeds, out, server.url, "--max-attempts", "1"), home=home(tmp_path), env=env)
    assert proc.returncode == 3, proc.stderr  # every request refused: the endpoint is unusable
    assert "Traceback" in proc.stderr and "error: the endpoint failed" in proc.stderr  # --debug shows it
    assert "AuthenticationError" in proc.stderr and "Incorrect API key provided: ***" in proc.stderr
    assert "openai._base_client" in proc.stderr or "HTTP Request" in proc.stderr  # the SDK's own debug log
    assert set(server.auth_headers) == {f"Bearer {key}"}
    assert_nowhere(key, proc.stdout, proc.stderr, dirs=(out,))


def test_key_in_a_pipeline_config(tmp_path, make_server, seeds):
    key = new_key()
    ref: list[OpenAIServer] = []
    server = make_server(reply=Recorder(generate_model(), echoing_key(ref, {2})))
    ref.append(server)
    server.inject("503", count=MAX_ATTEMPTS)
    off = "".join(f"{stage}: {{enabled: false}}\n" for stage in
                  ("filter", "clean", "augment", "export", "finetune", "eval", "report"))
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"seeds: {seeds}\n"
                      f"llm:\n  base_url: {server.url}\n  model: test-model\n  api_key: {key}\n"
                      f"  concurrency: 4\n  max_attempts: {MAX_ATTEMPTS}\n  retry_base: 0.01\n  timeout: 5\n"
                      "generate:\n  num_instructions: 6\n  instances_per_task: 3\n" + off)
    out = tmp_path / "run"
    dry = run_main("--debug", "run", str(config), "--out", str(out), "--dry-run", "--json", home=home(tmp_path))
    assert dry.returncode == 0, dry.stderr
    proc = run_cli("--debug", "run", str(config), "--out", str(out), "--no-progress", home=home(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert set(server.auth_headers) == {f"Bearer {key}"}
    assert (out / "generate" / "accepted.jsonl").stat().st_size > 0
    assert (out / "generate" / "failures.jsonl").stat().st_size > 0
    assert_nowhere(key, dry.stdout, dry.stderr, proc.stdout, proc.stderr, dirs=(out, home(tmp_path)))
    # a bad setting beside the key: the error message names the setting, never the key
    config.write_text(config.read_text().replace("concurrency: 4", "concurrency: 0"))
    bad = run_main("--debug", "run", str(config), "--out", str(tmp_path / "run2"), home=home(tmp_path))
    assert bad.returncode == 2 and "llm.concurrency" in bad.stderr
    assert_nowhere(key, bad.stdout, bad.stderr, dirs=(out,))
