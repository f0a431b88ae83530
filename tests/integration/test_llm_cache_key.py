"""What makes two requests "the same" for the response cache, checked from the outside.

Each case sends a request through a fresh LLM over one shared cache file to the loopback server and
counts what reaches the server. The expectations come from what changes the reply, never from the
implementation's own key function: a field that changes the reply must be sent again; an option that
does not (a tag, the API key, the concurrency, the timeout, the retry policy, which replica) must not.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from sftdata.llm.base import Request
from sftdata.llm.client import LLMConfig, make_llm

BASE = Request(messages=(("system", "Be brief."), ("user", "Name a colour.")), temperature=0.7, top_p=0.9,
               max_tokens=64, stop=("\n\n",), seed=3, tag="instructions")


def config(url: str, **changes) -> LLMConfig:
    base = dict(base_urls=[url], model="model-a", api_key="sk-one", retry_base=0.01, concurrency=4, timeout=5.0)
    base.update(changes)
    return LLMConfig(**base)


def sent(server, cache: Path, cfg: LLMConfig, request: Request) -> int:
    """How many requests reached the server to answer ``request`` once (0: it came from the cache)."""
    before = server.count
    llm = make_llm(cfg, cache_path=cache)
    out = asyncio.run(llm._complete_and_close([request]))
    assert out[0].ok
    return server.count - before


@pytest.fixture
def primed(make_server, tmp_path):
    server = make_server(reply=lambda body, n: f"reply {n}")
    cache = tmp_path / "cache.sqlite"
    assert sent(server, cache, config(server.url), BASE) == 1
    assert sent(server, cache, config(server.url), BASE) == 0  # the same request again: cached
    return server, cache


@pytest.mark.parametrize("changed", [
    replace(BASE, messages=(("system", "Be brief."), ("user", "Name a color."))),  # one letter
    replace(BASE, messages=(("user", "Be brief."), ("user", "Name a colour."))),  # a role
    replace(BASE, messages=(("user", "Name a colour."),)),  # no system message
    replace(BASE, messages=BASE.messages + (("assistant", "Red."),)),
    replace(BASE, temperature=0.0),
    replace(BASE, temperature=0.71),
    replace(BASE, top_p=1.0),
    replace(BASE, max_tokens=65),
    replace(BASE, seed=4),
    replace(BASE, seed=None),
    replace(BASE, stop=()),
    replace(BASE, stop=("\n",)),
    replace(BASE, stop=("\n\n", "###")),
], ids=["content", "role", "system", "turns", "temperature0", "temperature", "top_p", "max_tokens", "seed",
        "no_seed", "no_stop", "stop", "more_stops"])
def test_a_field_that_changes_the_reply_is_sent_again(primed, changed):
    server, cache = primed
    assert sent(server, cache, config(server.url), changed) == 1
    body = server.bodies[-1]
    assert [(m["role"], m["content"]) for m in body["messages"]] == list(changed.messages)
    assert body["temperature"] == changed.temperature and body["max_tokens"] == changed.max_tokens
    assert sent(server, cache, config(server.url), changed) == 0  # and is cached in its turn


def test_another_model_is_sent_again(primed):
    server, cache = primed
    assert sent(server, cache, config(server.url, model="model-b"), BASE) == 1
    assert server.bodies[-1]["model"] == "model-b"


@pytest.mark.parametrize("request_change, config_change", [
    ({"tag": "instances"}, {}),
    ({}, {"api_key": "sk-two"}),
    ({}, {"concurrency": 1}),
    ({}, {"timeout": 30.0}),
    ({}, {"max_attempts": 2, "retry_base": 0.5}),
    ({}, {"max_requests": 1}),
], ids=["tag", "api_key", "concurrency", "timeout", "retries", "budget"])
def test_an_option_that_does_not_change_the_reply_is_served_from_the_cache(primed, request_change,
                                                                            config_change):
    server, cache = primed
    assert sent(server, cache, config(server.url, **config_change), replace(BASE, **request_change)) == 0


def test_a_replica_serving_the_same_model_shares_the_cache(primed, make_server):
    server, cache = primed
    replica = make_server(reply=lambda body, n: "from the replica")
    assert sent(replica, cache, config(replica.url), BASE) == 0
    assert replica.count == 0


def test_an_equal_request_built_another_way_is_served_from_the_cache(primed):
    server, cache = primed
    rebuilt = Request.chat("Name a colour.", system="Be brief.", temperature=0.7, top_p=0.9, max_tokens=64,
                           stop=("\n\n",), seed=3)
    assert sent(server, cache, config(server.url), rebuilt) == 0
