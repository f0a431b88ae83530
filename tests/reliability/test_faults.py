"""The fault matrix: ``sftdata generate`` and ``sftdata augment`` (the real CLI, in a child process) against
the loopback server while it misbehaves.

For every fault the run finishes, or stops with exit 3 and one clear line when the endpoint stays
unusable; retries are bounded and follow Retry-After; every request is accounted for (an accepted or
rejected row, a failure in failures.jsonl, or a counted empty reply); stats.json adds up.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers_rel import (
    AUGMENT_INPUTS,
    OpenAIServer,
    Recorder,
    Reply,
    augment_args,
    body_key,
    cache_keys,
    check_augment_accounting,
    check_generate_accounting,
    free_port,
    generate_args,
    generate_model,
    outputs,
    rows,
    run_cli,
    run_main,
    stats_of,
    stop_after,
)
from test_augment import FakeModel

MAX_ATTEMPTS = 4
AUGMENT_OPS = 3  # constraints, deepen, paraphrase (augment_args)

# (id, inject kwargs, extra CLI options). Each fault is injected twice: before the run (it hits the first
# requests) and again at the 12th arrival (it hits classification / instance / answer requests).
TRANSIENT = [
    ("429-retry-after", dict(kind="429", count=2, retry_after=0.2), ()),
    ("429-no-retry-after", dict(kind="429", count=3), ()),
    ("500", dict(kind="500", count=3), ()),
    ("502", dict(kind="502", count=3), ()),
    ("503", dict(kind="503", count=3), ()),
    ("reset-mid-body", dict(kind="reset", count=3), ()),
    ("slower-than-timeout", dict(kind="slow", count=1, delay=2.0), ("--timeout", "0.4")),
    ("malformed-json", dict(kind="malformed", count=3), ()),
    ("empty-choices", dict(kind="empty_choices", count=3), ()),
]


def injecting(server_ref: list[OpenAIServer], at: int, fault: dict):
    """A Recorder plan that injects ``fault`` once more when arrival ``at`` is answered."""
    def plan(n: int, _body: dict) -> None:
        if n == at:
            server_ref[0].inject(**fault)
    return plan


def start(make_server, model, fault: dict | None = None, at: int = 12) -> tuple[OpenAIServer, Recorder]:
    ref: list[OpenAIServer] = []
    recorder = Recorder(model, injecting(ref, at, fault) if fault else None)
    server = make_server(reply=recorder)
    ref.append(server)
    if fault:
        server.inject(**fault)
    return server, recorder


def assert_clean_exit(proc, code: int = 0) -> None:
    assert proc.returncode == code, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- generate

@pytest.mark.parametrize("case,fault,extra", TRANSIENT, ids=[t[0] for t in TRANSIENT])
def test_generate_survives_transient_fault(tmp_path, make_server, seeds, case, fault, extra):
    server, _ = start(make_server, generate_model(), fault)
    proc = run_main(*generate_args(seeds, tmp_path / "run", server.url, *extra), home=tmp_path)
    assert_clean_exit(proc)
    stats = check_generate_accounting(tmp_path / "run", MAX_ATTEMPTS)
    llm = stats["llm"]
    assert stats["finished"] and stats["instructions"] == 8
    assert llm["failed"] == 0 and rows(tmp_path / "run" / "failures.jsonl") == []
    # every attempt reached the server, and each injected fault cost exactly one retry
    assert llm["attempts"] == server.count
    assert llm["attempts"] - llm["succeeded"] == 2 * fault["count"], llm


def test_generate_alpaca_mode_survives_mixed_faults(tmp_path, make_server, seeds):
    server, _ = start(make_server, generate_model())
    for kind in ("500", "reset", "malformed", "429", "empty_choices"):
        server.inject(kind, count=1)
    proc = run_main(*generate_args(seeds, tmp_path / "run", server.url, "--mode", "alpaca",
                                   "--alpaca-tasks-per-request", "5"), home=tmp_path)
    assert_clean_exit(proc)
    stats = check_generate_accounting(tmp_path / "run", MAX_ATTEMPTS)
    assert stats["finished"] and stats["instructions"] == 8 and stats["llm"]["failed"] == 0
    assert stats["llm"]["attempts"] == server.count == stats["llm"]["succeeded"] + 5


def test_generate_request_failing_every_retry_goes_to_failures(tmp_path, make_server, seeds):
    # the first round holds two instruction requests: 2 x 4 attempts, all 500
    server, _ = start(make_server, generate_model())
    server.inject("500", count=2 * MAX_ATTEMPTS)
    proc = run_main(*generate_args(seeds, tmp_path / "run", server.url), home=tmp_path)
    assert_clean_exit(proc)
    stats = check_generate_accounting(tmp_path / "run", MAX_ATTEMPTS)
    failures = rows(tmp_path / "run" / "failures.jsonl")
    assert len(failures) == stats["llm"]["failed"] == 2
    assert all(f["error"] == "InternalServerError" and f["attempts"] == MAX_ATTEMPTS for f in failures)
    assert stats["replies"]["instructions_failed"] == 2 and stats["finished"]


def test_generate_truncated_replies_are_rejected_not_retried(tmp_path, make_server, seeds):
    server, _ = start(make_server, generate_model(), dict(kind="length", count=4))
    proc = run_main(*generate_args(seeds, tmp_path / "run", server.url), home=tmp_path)
    assert_clean_exit(proc)
    stats = check_generate_accounting(tmp_path / "run", MAX_ATTEMPTS)
    assert stats["llm"]["attempts"] == stats["llm"]["succeeded"] == server.count  # "length" is no error
    assert stats["llm"]["truncated"] >= 8
    cut = [r for r in rows(tmp_path / "run" / "rejected.jsonl") if r["reason"] == "truncated"]
    assert any(r["detail"]["level"] == "instruction" for r in cut)  # the cut-off last item of a list


def test_generate_reply_in_the_wrong_language_is_rejected(tmp_path, make_server, seeds):
    chinese = "\n".join(f"{n}. 请用三句话描述一下{w}的样子和用途。" for n, w in
                        zip(range(9, 14), ["春天的花园", "古老的石桥", "海边的灯塔", "山间的小屋", "城市的夜景"]))
    model = generate_model()

    def plan(n: int, body: dict) -> Reply | None:
        prompt = body["messages"][-1]["content"]
        return Reply(chinese) if n <= 2 and prompt.startswith("Come up with a series of tasks") else None

    server = make_server(reply=Recorder(model, plan))
    proc = run_main(*generate_args(seeds, tmp_path / "run", server.url), home=tmp_path)
    assert_clean_exit(proc)
    check_generate_accounting(tmp_path / "run", MAX_ATTEMPTS)
    language = [r for r in rows(tmp_path / "run" / "rejected.jsonl") if r["reason"] == "language"]
    assert len(language) >= 5 and all(r["record"]["instruction"].startswith("请") for r in language)


def corrupting(model, numbers: set[int], corrupt):
    """A Recorder plan: the replies to arrivals ``numbers`` are the model's, passed through ``corrupt``."""
    def plan(n: int, body: dict) -> Reply | None:
        if n not in numbers:
            return None
        out = model(body, n)
        reply = out if isinstance(out, Reply) else Reply(out)
        return Reply(corrupt(reply.text), finish_reason=reply.finish_reason)
    return plan


def all_utf8(out: Path) -> str:
    text = "".join(p.read_bytes().decode("utf-8") for p in sorted(out.glob("*.jsonl")))  # strict: raises if not
    return text


def test_generate_reply_holding_half_a_character_is_kept_as_a_replacement(tmp_path, make_server, seeds):
    """A \\ud800 escape in the JSON body decodes to a lone surrogate: no UTF-8 file can hold it."""
    model = generate_model()
    server = make_server(reply=Recorder(model, corrupting(model, {1, 4, 7, 10, 13}, lambda t: t.replace("e", "e\ud800"))))
    proc = run_main(*generate_args(seeds, tmp_path / "run", server.url), home=tmp_path)
    assert_clean_exit(proc)
    check_generate_accounting(tmp_path / "run", MAX_ATTEMPTS)
    assert "\ufffd" in all_utf8(tmp_path / "run")


def test_generate_reply_of_deeply_nested_json_is_unparsable_not_fatal(tmp_path, make_server, seeds):
    model = generate_model()
    server = make_server(reply=Recorder(model, corrupting(model, {1}, lambda t: "[" * 5000)))
    proc = run_main(*generate_args(seeds, tmp_path / "run", server.url), home=tmp_path)
    assert_clean_exit(proc)
    stats = check_generate_accounting(tmp_path / "run", MAX_ATTEMPTS)
    assert stats["unparsable_replies"] >= 1


def test_retry_after_is_followed_and_backoff_is_bounded(tmp_path, make_server, seeds):
    """Two 429s with Retry-After: 0.5 while the own backoff would wait 3 s: the server's value wins.
    Then two 429s without it: the own backoff (--retry-base 0.01) applies."""
    def plan(n: int, _body: dict) -> Reply | None:
        if n in (1, 2):
            return Reply(status=429, text="slow down", headers={"retry-after": "0.5"})
        if n in (4, 5):
            return Reply(status=429, text="slow down")
        return None

    recorder = Recorder(generate_model(), plan)
    server = make_server(reply=recorder)
    args = generate_args(seeds, tmp_path / "run", server.url, "--concurrency", "1", num=2)
    first = run_main(*args, "--retry-base", "3", "--max-requests", "1", home=tmp_path)
    assert_clean_exit(first)  # a budget stop after the first request: exit 0, state saved
    gaps = [b - a for a, b in zip(recorder.times, recorder.times[1:])]
    assert len(recorder.times) == 3
    assert all(0.5 <= gap < 1.2 for gap in gaps), gaps  # Retry-After, not 3 s of backoff
    second = run_main(*args, home=tmp_path)
    assert_clean_exit(second)
    gaps = [b - a for a, b in zip(recorder.times[3:], recorder.times[4:6])]
    assert all(gap < 0.3 for gap in gaps), gaps
    check_generate_accounting(tmp_path / "run", MAX_ATTEMPTS, single_run=False)


def test_generate_endpoint_that_stays_unusable_exits_3_then_resumes(tmp_path, make_server, seeds):
    server, _ = start(make_server, generate_model())
    server.inject("503", count=10_000)
    out = tmp_path / "run"
    started = time.monotonic()
    proc = run_main(*generate_args(seeds, out, server.url), home=tmp_path)
    assert_clean_exit(proc, 3)
    assert time.monotonic() - started < 30
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the endpoint failed") and "InternalServerError" in last, last
    log, failures = rows(out / "requests.jsonl"), rows(out / "failures.jsonl")
    assert len(failures) == len(log) >= 5 and all(r["attempts"] == MAX_ATTEMPTS for r in log)
    assert server.count == MAX_ATTEMPTS * len(log)  # bounded: exactly max-attempts per request
    server.faults.clear()  # the endpoint recovers: the same command finishes the run
    proc = run_main(*generate_args(seeds, out, server.url), home=tmp_path)
    assert_clean_exit(proc)
    check_generate_accounting(out, MAX_ATTEMPTS, single_run=False)


def test_generate_endpoint_down_at_start_exits_3(tmp_path, seeds):
    """In a child process: the exit status itself is 3, and the message says the connection was refused."""
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    started = time.monotonic()
    proc = run_cli(*generate_args(seeds, tmp_path / "run", url), home=tmp_path)
    assert_clean_exit(proc, 3)
    assert time.monotonic() - started < 60
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("error: the endpoint failed") and "refused" in message.lower(), message
    failures = rows(tmp_path / "run" / "failures.jsonl")
    assert len(failures) >= 5 and all("refused" in f["detail"].lower() for f in failures)


def dies_then_recovers(tmp_path: Path, make_server, model_factory, args_for, die_at: int) -> tuple[Path, Recorder]:
    """The server dies at arrival ``die_at``: exit 3. It comes back on the same port: the same command
    resumes, sends no cached request again, and ends where an uninterrupted run ends."""
    reference = make_server(reply=model_factory())
    proc = run_main(*args_for(tmp_path / "reference", reference.url), home=tmp_path)
    assert_clean_exit(proc)

    ref: list[OpenAIServer] = []
    server = make_server(reply=Recorder(model_factory(), stop_after(ref, die_at)))
    ref.append(server)
    out = tmp_path / "run"
    proc = run_main(*args_for(out, server.url), home=tmp_path)
    assert_clean_exit(proc, 3)
    assert "error: the endpoint failed" in proc.stderr
    assert rows(out / "failures.jsonl"), "the requests that met the dead server are not recorded"
    cached = cache_keys(out / "cache.sqlite")
    assert cached

    recorder = Recorder(model_factory())
    revived = OpenAIServer(reply=recorder).start(port=server.port)
    try:
        proc = run_main(*args_for(out, revived.url), home=tmp_path)
    finally:
        revived.stop()
    assert_clean_exit(proc)
    resent = [b for b in recorder.bodies if body_key(b) in cached]
    assert not resent, f"{len(resent)} cached requests were sent again"
    return out, recorder


def test_generate_endpoint_dies_mid_run_exit_3_then_resume_equals_uninterrupted(tmp_path, make_server, seeds):
    out, _ = dies_then_recovers(tmp_path, make_server, generate_model,
                                # one request at a time: the death lands on the same request in every run, so
                                # which requests failed (and were retried later) does not depend on timing
                                lambda out, url: generate_args(seeds, out, url, "--concurrency", "1",
                                                               "--timeout", "30"), die_at=15)
    assert outputs(out) == outputs(tmp_path / "reference")
    check_generate_accounting(out, MAX_ATTEMPTS, single_run=False)


# ---------------------------------------------------------------- augment

@pytest.mark.parametrize("case,fault,extra", TRANSIENT, ids=[t[0] for t in TRANSIENT])
def test_augment_survives_transient_fault(tmp_path, make_server, augment_input, case, fault, extra):
    server, _ = start(make_server, FakeModel(), fault, at=8)
    proc = run_main(*augment_args(augment_input, tmp_path / "out", server.url, *extra), home=tmp_path)
    assert_clean_exit(proc)
    stats = check_augment_accounting(tmp_path / "out", len(AUGMENT_INPUTS), AUGMENT_OPS, MAX_ATTEMPTS)
    llm = stats["llm"]
    assert stats["finished"] and llm["failed"] == 0 and stats["failed"] == 0
    assert llm["attempts"] == server.count and llm["attempts"] - llm["succeeded"] == 2 * fault["count"], llm
    assert stats["accepted"] == len(AUGMENT_INPUTS) * AUGMENT_OPS  # the well-behaved model: all kept


def test_augment_request_failing_every_retry_is_counted_and_logged(tmp_path, make_server, augment_input):
    server, _ = start(make_server, FakeModel())
    server.inject("502", count=2 * MAX_ATTEMPTS)
    proc = run_main(*augment_args(augment_input, tmp_path / "out", server.url, "--concurrency", "1"), home=tmp_path)
    assert_clean_exit(proc)
    stats = check_augment_accounting(tmp_path / "out", len(AUGMENT_INPUTS), AUGMENT_OPS, MAX_ATTEMPTS)
    assert stats["failed"] == 2 and stats["llm"]["failed"] == 2
    failures = rows(tmp_path / "out" / "failures.jsonl")
    assert all(f["error"] == "BadGatewayError" or f["error"] == "InternalServerError" for f in failures), failures


def test_augment_truncated_rewrites_are_rejected(tmp_path, make_server, augment_input):
    server, _ = start(make_server, FakeModel())
    server.inject("length", count=3)  # the first three requests are rewrites
    proc = run_main(*augment_args(augment_input, tmp_path / "out", server.url, "--concurrency", "1"), home=tmp_path)
    assert_clean_exit(proc)
    stats = check_augment_accounting(tmp_path / "out", len(AUGMENT_INPUTS), AUGMENT_OPS, MAX_ATTEMPTS)
    assert stats["eliminated"].get("truncated") == 3 and stats["llm"]["truncated"] == 3


def test_augment_rewrite_in_the_wrong_language_is_rejected(tmp_path, make_server, augment_input):
    model = FakeModel(deepen=lambda prompt, lang, body: "请详细解释其中的原理，并说明每一步背后的原因和影响。")
    server = make_server(reply=model)
    proc = run_main(*augment_args(augment_input, tmp_path / "out", server.url), home=tmp_path)
    assert_clean_exit(proc)
    stats = check_augment_accounting(tmp_path / "out", len(AUGMENT_INPUTS), AUGMENT_OPS, MAX_ATTEMPTS)
    assert stats["ops"]["deepen"]["eliminated"] == {"language": len(AUGMENT_INPUTS)}


def test_augment_reply_holding_half_a_character_or_deep_brackets_is_handled(tmp_path, make_server, augment_input):
    model = FakeModel()
    corrupt = {2: lambda t: t.replace("e", "e\ud800"), 5: lambda t: "[" * 5000, 9: lambda t: t + "\udfff"}
    def plan(n: int, body: dict) -> Reply | None:
        return Reply(corrupt[n](model(body, n))) if n in corrupt else None
    server = make_server(reply=Recorder(model, plan))
    proc = run_main(*augment_args(augment_input, tmp_path / "out", server.url, "--concurrency", "1"), home=tmp_path)
    assert_clean_exit(proc)
    check_augment_accounting(tmp_path / "out", len(AUGMENT_INPUTS), AUGMENT_OPS, MAX_ATTEMPTS)
    all_utf8(tmp_path / "out")


def test_augment_endpoint_that_stays_unusable_exits_3(tmp_path, make_server, augment_input):
    server, _ = start(make_server, FakeModel())
    server.inject("429", count=10_000, retry_after=0.01)
    proc = run_main(*augment_args(augment_input, tmp_path / "out", server.url), home=tmp_path)
    assert_clean_exit(proc, 3)
    assert proc.stderr.strip().splitlines()[-1].startswith("error: the endpoint failed")
    log = rows(tmp_path / "out" / "requests.jsonl")
    assert len(rows(tmp_path / "out" / "failures.jsonl")) == len(log) >= 5
    assert server.count == MAX_ATTEMPTS * len(log)


def test_augment_endpoint_down_at_start_exits_3(tmp_path, augment_input):
    url = f"http://127.0.0.1:{free_port()}/v1"
    proc = run_main(*augment_args(augment_input, tmp_path / "out", url), home=tmp_path)
    assert_clean_exit(proc, 3)
    assert "refused" in proc.stderr.strip().splitlines()[-1].lower()
    assert not (tmp_path / "out" / "accepted.jsonl").exists() or rows(tmp_path / "out" / "accepted.jsonl") == []


def test_augment_endpoint_dies_mid_run_exit_3_then_resume_equals_uninterrupted(tmp_path, make_server,
                                                                               augment_input):
    out, _ = dies_then_recovers(tmp_path, make_server, FakeModel,
                                lambda out, url: augment_args(augment_input, out, url), die_at=14)
    names = ("accepted.jsonl", "rejected.jsonl")
    assert outputs(out, names) == outputs(tmp_path / "reference", names)
    assert json.loads((out / "stats.json").read_text())["finished"] is True
    check_augment_accounting(out, len(AUGMENT_INPUTS), AUGMENT_OPS, MAX_ATTEMPTS, single_run=False)
    assert stats_of(out)["accepted"] == stats_of(tmp_path / "reference")["accepted"]
