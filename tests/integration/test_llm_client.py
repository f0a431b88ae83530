"""The openai-compatible LLM layer against a real loopback server: faults, retries, budget, cache, replicas, secrets."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from openai_server import Reply

from sftdata.core.errors import EndpointUnavailable
from sftdata.core.rundir import RunDir
from sftdata.llm.base import Request
from sftdata.llm.client import BUDGET, LLM, LLMConfig, make_llm
from sftdata.llm.openai_backend import OpenAIBackend, RetryPolicy

KEY = "sk-test-SECRET-abcdef123456"


def run(llm, requests):
    return asyncio.run(llm._complete_and_close(requests))


def config(*urls: str, **kw) -> LLMConfig:
    base = dict(base_urls=list(urls), model="test-model", api_key=KEY, retry_base=0.01, concurrency=4,
                timeout=5.0)
    base.update(kw)
    return LLMConfig(**base)


def requests(n: int, prefix: str = "prompt") -> list[Request]:
    return [Request.chat(f"{prefix} {i}", seed=i, tag="test") for i in range(n)]


@pytest.mark.parametrize("fault", ["429", "500", "502", "503", "reset", "malformed", "empty_choices"])
def test_each_fault_is_retried_and_succeeds(make_server, tmp_path: Path, fault: str) -> None:
    srv = make_server(reply=lambda body, n: "fine")
    srv.inject(fault, count=2)
    llm = make_llm(config(srv.url), RunDir(tmp_path))
    out = run(llm, requests(1))
    assert out[0].ok and out[0].text == "fine"
    assert out[0].attempts == 3
    assert srv.count == 3
    assert llm.stats.sent == 1 and llm.stats.succeeded == 1 and llm.stats.attempts == 3


def test_slow_reply_times_out_and_is_retried(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: "fine")
    srv.inject("slow", delay=3.0)
    llm = make_llm(config(srv.url, timeout=0.5), RunDir(tmp_path))
    out = run(llm, requests(1))
    assert out[0].ok and out[0].attempts == 2


def test_length_finish_reason_is_reported_not_retried(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: "a long answer that was cut")
    srv.inject("length")
    llm = make_llm(config(srv.url), RunDir(tmp_path))
    out = run(llm, requests(1))
    assert out[0].ok and out[0].truncated and srv.count == 1
    assert llm.stats.truncated == 1


def test_retry_after_is_honored(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: "ok")
    srv.inject("429", retry_after=1.0)
    llm = make_llm(config(srv.url, retry_base=0.001), RunDir(tmp_path))
    started = time.perf_counter()
    out = run(llm, requests(1))
    assert out[0].ok
    assert time.perf_counter() - started >= 0.95


def test_retry_after_of_an_hour_is_capped(make_server, tmp_path: Path) -> None:
    """A server (or a proxy in front of it) asking for an hour must not stall the run for an hour."""
    srv = make_server(reply=lambda body, n: "ok")
    srv.inject("429", retry_after=3600.0)
    cfg = config(srv.url)
    backend = OpenAIBackend(cfg.base_urls, cfg.model or "", cfg.api_key,
                            retry=RetryPolicy(base_delay=0.001, max_retry_after=0.3))
    llm = LLM(cfg, backend, RunDir(tmp_path))
    started = time.perf_counter()
    # bounded here: without the cap the client would sleep the hour, and the test must fail, not hang
    out = asyncio.run(asyncio.wait_for(llm._complete_and_close(requests(1)), timeout=30))
    assert out[0].ok and out[0].attempts == 2 and srv.count == 2
    assert 0.25 <= time.perf_counter() - started < 30


def test_default_retry_policy_waits_at_most_two_minutes_whatever_the_server_asks() -> None:
    policy, rng = RetryPolicy(), random.Random(0)
    assert policy.delay(1, 3600.0, rng) == 120.0 and policy.delay(1, 1e12, rng) == 120.0
    assert policy.delay(1, 2.5, rng) == 2.5 and policy.delay(3, -5.0, rng) == 0.0


def test_failure_after_all_attempts_is_recorded_not_raised(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: "ok")
    srv.inject("500", count=3)
    rundir = RunDir(tmp_path)
    llm = make_llm(config(srv.url, max_attempts=3, concurrency=1), rundir)
    out = run(llm, requests(2))
    assert not out[0].ok and out[0].error == "InternalServerError" and out[0].attempts == 3
    assert out[1].ok
    failures = rundir.journal("failures.jsonl").read()
    assert len(failures) == 1 and failures[0]["error"] == "InternalServerError"
    assert llm.stats.sent == llm.stats.succeeded + llm.stats.failed == 2

    # the next run (a resume) sends the failed request again and takes the good one from the cache
    before = srv.count
    again = make_llm(config(srv.url, max_attempts=3, concurrency=1), rundir)
    out = run(again, requests(2))
    assert out[0].ok and not out[0].cached and out[1].cached
    assert srv.count - before == 1 and again.stats.sent == 1 and again.stats.cached == 1


def test_a_success_resets_the_failure_streak(make_server, tmp_path: Path) -> None:
    """fail_after counts failures in a row: two, a success, two more is a flaky endpoint, not a dead one."""
    srv = make_server(reply=lambda body, n: "ok")
    llm = make_llm(config(srv.url, max_attempts=1, fail_after=3, concurrency=1, cache=False), RunDir(tmp_path))

    async def batches():
        try:
            srv.inject("500", count=2)
            first = await llm.complete(requests(3, "first"))
            srv.inject("500", count=2)
            second = await llm.complete(requests(2, "second"))
            return first, second
        finally:
            await llm.aclose()

    first, second = asyncio.run(batches())
    assert [c.ok for c in first] == [False, False, True] and [c.ok for c in second] == [False, False]
    assert llm.stats.failed == 4 and llm.stats.succeeded == 1


def test_a_retry_goes_to_the_next_replica(make_server, tmp_path: Path) -> None:
    """A replica that just failed is not asked again first: the retry moves on to the next one."""
    first = make_server(reply=lambda body, n: "from the first")
    second = make_server(reply=lambda body, n: "from the second")
    first.inject("500", count=1)
    llm = make_llm(config(first.url, second.url, concurrency=1), RunDir(tmp_path))
    out = run(llm, requests(1))
    assert out[0].ok and out[0].attempts == 2 and out[0].text == "from the second"
    assert first.count == 1 and second.count == 1


def test_endpoint_down_raises_endpoint_unavailable(tmp_path: Path) -> None:
    llm = make_llm(config("http://127.0.0.1:9/v1", max_attempts=2, fail_after=3), RunDir(tmp_path))
    with pytest.raises(EndpointUnavailable) as info:
        run(llm, requests(3))
    assert KEY not in str(info.value)
    assert len(RunDir(tmp_path).journal("failures.jsonl").read()) == 3


def test_cache_means_zero_requests_on_rerun(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: f"answer {body['messages'][-1]['content']}")
    llm = make_llm(config(srv.url), RunDir(tmp_path))
    first = run(llm, requests(5))
    assert srv.count == 5
    llm = make_llm(config(srv.url), RunDir(tmp_path))
    second = run(llm, requests(5))
    assert srv.count == 5, "a cached request was sent again"
    assert [c.text for c in first] == [c.text for c in second]
    assert all(c.cached for c in second) and llm.stats.cached == 5 and llm.stats.sent == 0


def test_no_cache_sends_again(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: "x")
    for _ in range(2):
        run(make_llm(config(srv.url, cache=False), RunDir(tmp_path)), requests(2))
    assert srv.count == 4


def test_requests_spread_over_replicas(make_server, tmp_path: Path) -> None:
    servers = [make_server(reply=lambda body, n: "r") for _ in range(3)]
    llm = make_llm(config(*(s.url for s in servers)), RunDir(tmp_path))
    run(llm, requests(12))
    assert [s.count for s in servers] == [4, 4, 4]


def test_max_requests_budget_denies_the_rest(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: "x")
    llm = make_llm(config(srv.url, max_requests=3), RunDir(tmp_path))
    out = run(llm, requests(5))
    assert srv.count == 3 and llm.exhausted
    assert [c.error for c in out] == [None, None, None, BUDGET, BUDGET]


def test_max_cost_is_a_hard_bound(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: "y" * 400)  # ~101 completion tokens each
    cfg = config(srv.url, price_in=1000.0, price_out=1000.0, max_cost=0.5)
    llm = make_llm(cfg, RunDir(tmp_path))
    run(llm, [Request.chat(f"p{i}", max_tokens=110, seed=i) for i in range(20)])
    assert llm.exhausted and 0 < srv.count < 20
    assert llm.stats.cost_usd <= 0.5


def test_api_key_never_written(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: "x")
    srv.inject("500", count=10)
    rundir = RunDir(tmp_path)
    rundir.write_config({"llm": config(srv.url).public(), "api_key": KEY})
    llm = make_llm(config(srv.url, max_attempts=2, fail_after=100), rundir)
    run(llm, requests(6))
    assert srv.auth_headers[0] == f"Bearer {KEY}"  # it was sent to the server ...
    for path in tmp_path.rglob("*"):  # ... and written nowhere
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_malformed_body_then_function_reply(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: Reply(raw_body=b"not json") if n == 1 else "good")
    out = run(make_llm(config(srv.url), RunDir(tmp_path)), requests(1))
    assert out[0].ok and out[0].text == "good" and out[0].attempts == 2


@pytest.mark.parametrize("raw_body", [
    b"[1, 2]", b'"just a string"', b'{"choices": {}}', b'{"choices": [[]]}', b'{"choices": [{"message": null}]}',
    b'{"choices": [{"message": {"content": null}}]}', b'{"choices": [{"message": {"content": 7}}]}',
    b"\xff\xfe not utf-8", b"<html>502 Bad Gateway</html>",
])
def test_unusable_200_bodies_are_retried(make_server, tmp_path: Path, raw_body: bytes) -> None:
    srv = make_server(reply=lambda body, n: Reply(raw_body=raw_body) if n == 1 else "good")
    out = run(make_llm(config(srv.url), RunDir(tmp_path)), requests(1))
    assert out[0].ok and out[0].text == "good" and out[0].attempts == 2


def test_reply_fields_missing_or_odd_take_safe_defaults(make_server, tmp_path: Path) -> None:
    body = (b'{"choices": [{"message": {"content": "hi \\ud800 there"}}], '
            b'"usage": {"prompt_tokens": "12", "completion_tokens": -3}}')
    srv = make_server(reply=lambda b, n: Reply(raw_body=body))
    (out,) = run(make_llm(config(srv.url), RunDir(tmp_path)), requests(1))
    assert out.ok and out.text == "hi \ufffd there" and out.finish_reason == "stop"
    assert out.model == "test-model" and out.request_id is None
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (0, 0)


def test_request_body_is_the_chat_completions_shape(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: "ok")
    request = Request.chat("用中文回答", seed=3, tag="t", max_tokens=9, stop=["\n\n"])
    run(make_llm(config(srv.url), RunDir(tmp_path)), [request])
    (sent,) = srv.bodies
    assert sent["model"] == "test-model" and sent["messages"] == [{"role": "user", "content": "用中文回答"}]
    assert (sent["max_tokens"], sent["seed"], sent["stop"]) == (9, 3, ["\n\n"])
    assert {"temperature", "top_p"} <= sent.keys()


def test_max_tokens_refused_is_resent_as_max_completion_tokens_and_remembered(make_server, tmp_path: Path) -> None:
    # newer OpenAI models answer 400 to max_tokens; the request must not fail for good
    def reply(body: dict, n: int):
        if "max_tokens" in body:
            return Reply(status=400, text="Unsupported parameter: 'max_tokens' is not supported with this model. "
                                          "Use 'max_completion_tokens' instead.")
        return "fine"
    srv = make_server(reply=reply)
    llm = make_llm(config(srv.url, concurrency=1), RunDir(tmp_path))
    out = run(llm, requests(3))
    assert all(c.ok and c.text == "fine" for c in out)
    assert srv.count == 4  # one refusal, then every request (the first resent) with the new name
    assert all("max_completion_tokens" in b and "max_tokens" not in b for b in srv.bodies[1:])


def test_a_refused_optional_parameter_is_dropped_once_and_remembered(make_server, tmp_path: Path) -> None:
    def reply(body: dict, n: int):
        if "seed" in body:
            return Reply(status=400, text="Unsupported parameter: 'seed'")
        return "fine"
    srv = make_server(reply=reply)
    llm = make_llm(config(srv.url, concurrency=1), RunDir(tmp_path))
    out = run(llm, requests(3))
    assert all(c.ok for c in out) and srv.count == 4
    assert "max_tokens" in srv.bodies[-1]


def test_a_plain_bad_request_still_fails_without_resending(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: Reply(status=400, text="messages: invalid content"))
    out = run(make_llm(config(srv.url), RunDir(tmp_path)), requests(1))
    assert not out[0].ok and srv.count == 1


def test_a_404_from_a_base_url_without_v1_suggests_v1(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: Reply(status=404, text="Not Found"))
    root = srv.url.removesuffix("/v1")
    (out,) = run(make_llm(config(root), RunDir(tmp_path)), requests(1))
    assert not out.ok and f"did you mean --base-url {root}/v1 ?" in out.error_detail
    (out,) = run(make_llm(config(srv.url), RunDir(tmp_path / "b")), requests(1))
    assert not out.ok and "did you mean" not in out.error_detail  # already /v1: no false hint


def test_reasoning_model_out_of_tokens_is_truncated_not_retried(make_server, tmp_path: Path) -> None:
    body = (b'{"choices": [{"message": {"role": "assistant", "content": null, "reasoning_content": "Let me '
            b'think"}, "finish_reason": "length"}]}')
    srv = make_server(reply=lambda b, n: Reply(raw_body=body))
    (out,) = run(make_llm(config(srv.url), RunDir(tmp_path)), requests(1))
    assert out.ok and out.truncated and out.text == "" and srv.count == 1


@pytest.mark.parametrize(("reply", "text", "truncated"), [
    ("<think>two plus two</think>\n\n4", "4", False),
    ("<think>still thinking when max_tokens ran out", "", True),
])
def test_think_blocks_are_never_the_answer(make_server, tmp_path: Path, reply: str, text: str,
                                           truncated: bool) -> None:
    srv = make_server(reply=lambda b, n: reply)
    (out,) = run(make_llm(config(srv.url), RunDir(tmp_path)), requests(1))
    assert out.ok and (out.text, out.truncated) == (text, truncated)


def test_token_param_option_sends_max_completion_tokens_from_the_first_request(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=lambda body, n: "ok")
    run(make_llm(config(srv.url, token_param="max_completion_tokens"), RunDir(tmp_path)), requests(1))
    (sent,) = srv.bodies
    assert sent["max_completion_tokens"] and "max_tokens" not in sent


REASONING_BODY = (b'{"choices": [{"message": {"role": "assistant", "content": "4", "reasoning_content": '
                  b'"two plus two"}, "finish_reason": "stop"}]}')


@pytest.mark.parametrize(("reply", "reasoning"), [
    (Reply(raw_body=REASONING_BODY), "two plus two"),  # DeepSeek / vLLM: beside the content
    (Reply(text="<think>two plus two</think>\n\n4"), "two plus two"),  # QwQ / R1 style: inside it
])
def test_reasoning_keep_stores_the_thinking_beside_the_answer(make_server, tmp_path: Path, reply: Reply,
                                                              reasoning: str) -> None:
    srv = make_server(reply=lambda b, n: reply)
    (kept,) = run(make_llm(config(srv.url, reasoning="keep"), RunDir(tmp_path), tmp_path / "cache.db"), requests(1))
    assert kept.ok and kept.text == "4" and kept.reasoning == reasoning
    # the default strips it, also from a cached answer; keep finds it again in the same cache
    (stripped,) = run(make_llm(config(srv.url), RunDir(tmp_path), tmp_path / "cache.db"), requests(1))
    assert stripped.cached and stripped.text == "4" and stripped.reasoning == ""
    (again,) = run(make_llm(config(srv.url, reasoning="keep"), RunDir(tmp_path), tmp_path / "cache.db"), requests(1))
    assert again.cached and again.reasoning == reasoning and srv.count == 1



def test_http_proxy_from_the_environment_carries_the_requests(make_server, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # the loopback server stands in for the proxy: it gets the request line in absolute form, for a
    # host that does not resolve (.invalid), so only a request through the proxy can be answered
    srv = make_server(reply=lambda body, n: "via proxy")
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", srv.url.rsplit("/v1", 1)[0])
    llm = make_llm(config("http://llm.example.invalid:8000/v1", max_attempts=1), RunDir(tmp_path))
    out = run(llm, requests(1))
    assert out[0].ok and out[0].text == "via proxy"
    assert srv.paths == ["http://llm.example.invalid:8000/v1/chat/completions"]
    assert srv.auth_headers == [f"Bearer {KEY}"]
