"""What an endpoint URL may be and carry, and how much of a reply is read, how long an attempt may
take (issue 22, points 4, 7, 8, 9). Real loopback servers, the real CLI."""

from __future__ import annotations

import base64
import json
import time

import pytest
from helpers_rel import Recorder, Reply, generate_args, generate_model, run_cli, run_main, stats_of

CHAT = ("llm", "chat", "hi", "--model", "test-model", "--retry-base", "0.01")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/v1", "file:///etc/passwd", "notaurl", "http://",
                                 "javascript:alert(1)", "http://[::1", "http://127.0.0.1:99999/v1"])
def test_a_bad_base_url_exits_2_at_once_naming_it(tmp_path, server, seeds, url):
    started = time.monotonic()
    result = run_main(*generate_args(seeds, tmp_path / "run", url), home=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "--base-url" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 10 and not (tmp_path / "run").exists()


def test_credentials_in_the_base_url_authenticate_and_are_never_written(tmp_path, server, seeds):
    server._reply_fn = generate_model()
    url = server.url.replace("http://", "http://alice:SecretPass123@") + "?key=QueryKey12345"
    result = run_main(*generate_args(seeds, tmp_path / "run", url, num=3), home=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = "Basic " + base64.b64encode(b"alice:SecretPass123").decode()
    assert server.auth_headers and set(server.auth_headers) == {expected}
    assert all(p.endswith("/chat/completions?key=QueryKey12345") for p in server.paths), server.paths[:2]
    # the dataset card of an export of that run, too
    exported = run_main("export", str(tmp_path / "run" / "accepted.jsonl"), "--out", str(tmp_path / "export"),
                        home=tmp_path)
    assert exported.returncode == 0, exported.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert config["llm"]["base_urls"] == [server.url.replace("http://", "http://***@") + "?key=***"]
    texts = [result.stdout, result.stderr, exported.stdout, exported.stderr]
    texts += [p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file()]
    for secret in ("SecretPass123", "QueryKey12345", expected.split()[1]):
        assert not any(secret in text for text in texts), secret


def test_the_base_url_of_a_pipeline_config_is_redacted_everywhere(tmp_path, server, seeds):
    server._reply_fn = generate_model()
    url = server.url.replace("http://", "http://alice:SecretPass123@") + "?key=QueryKey12345"
    config = tmp_path / "pipe.yaml"
    config.write_text(f"seeds: {seeds}\nllm: {{base_url: ['{url}'], model: test-model, retry_base: 0.01}}\n"
                      "generate: {num_instructions: 3, instances_per_task: 2}\n"
                      + "".join(f"{s}: {{enabled: false}}\n" for s in ("augment", "finetune", "eval", "report")),
                      encoding="utf-8")
    result = run_main("run", str(config), "--out", str(tmp_path / "pipe"), "--no-progress", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pipe" / "export" / "README.md").exists()
    texts = [result.stdout, result.stderr]
    texts += [p.read_bytes().decode("utf-8", "replace") for p in (tmp_path / "pipe").rglob("*") if p.is_file()]
    assert not any("SecretPass123" in t or "QueryKey12345" in t for t in texts)
    assert "?key=***" in (tmp_path / "pipe" / "config.json").read_text(encoding="utf-8")


def _big_reply(size: int) -> Reply:
    text = "x" * size
    body = {"id": "big", "object": "chat.completion", "model": "test-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    return Reply(raw_body=json.dumps(body).encode())


def test_an_oversize_reply_is_a_failed_attempt_not_read_whole(tmp_path, make_server):
    server = make_server(reply=lambda body, n: _big_reply(3_000_000))
    result = run_main(*CHAT, "--base-url", server.url, "--max-reply-bytes", "100000", "--max-attempts", "2",
                      home=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "ReplyTooLarge" in result.stderr and "--max-reply-bytes 100000" in result.stderr
    assert server.count == 2  # each attempt failed, then the request


def test_an_oversize_reply_in_generate_is_retried_and_never_stored(tmp_path, make_server, seeds):
    """The first reply is 6 MB (over the 4 MiB default): a failed attempt, retried; nothing of it on disk."""
    model = generate_model()
    server = make_server(reply=Recorder(model, lambda n, body: _big_reply(6_000_000) if n == 1 else None))
    result = run_main(*generate_args(seeds, tmp_path / "run", server.url, num=3), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stats_of(tmp_path / "run")["llm"]["attempts"] > stats_of(tmp_path / "run")["llm"]["sent"]
    on_disk = sum(p.stat().st_size for p in (tmp_path / "run").rglob("*") if p.is_file())
    assert on_disk < 1_000_000, on_disk


def test_timeout_bounds_a_body_trickling_one_byte_a_second(tmp_path, make_server):
    server = make_server(reply=lambda body, n: Reply(text="slow", trickle=1.0))
    started = time.monotonic()
    result = run_cli(*CHAT, "--base-url", server.url, "--timeout", "1.5", "--max-attempts", "2",
                     home=tmp_path, timeout=60)
    seconds = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    assert "AttemptTimeout" in result.stderr and "--timeout 1.5" in result.stderr
    assert server.count == 2 and seconds < 30, seconds


def test_failures_log_exists_when_nothing_failed(tmp_path, make_server, seeds):
    server = make_server(reply=generate_model())
    assert run_main(*generate_args(seeds, tmp_path / "run", server.url, num=2), home=tmp_path).returncode == 0
    assert (tmp_path / "run" / "failures.jsonl").read_text() == ""


def test_a_large_unparsable_reply_is_kept_truncated_with_its_size(tmp_path, make_server, seeds):
    """A 2 MB reply (under the cap) that parses to nothing: rejected.jsonl keeps its start and size."""
    model = generate_model()
    server = make_server(reply=Recorder(model, lambda n, body: Reply(text="~" * 2_000_000) if n == 1 else None))
    result = run_main(*generate_args(seeds, tmp_path / "run", server.url, num=3), home=tmp_path)
    assert result.returncode == 0, result.stderr
    rejected = [json.loads(line) for line in (tmp_path / "run" / "rejected.jsonl").read_text().splitlines()]
    big = [r for r in rejected if r["detail"].get("raw_chars") == 2_000_000]
    assert len(big) == 1 and len(big[0]["detail"]["raw"]) == 10_000
    assert (tmp_path / "run" / "rejected.jsonl").stat().st_size < 200_000
