"""llm.backend: an explicit key, inferred from base_url by default, backends looked up in one registry."""

from __future__ import annotations

import pytest

from sftdata.core.errors import ConfigError
from sftdata.llm import client
from sftdata.llm.base import Completion, Request
from sftdata.llm.client import LLMConfig, make_backend, make_llm


def test_backend_is_inferred_from_base_url_as_before() -> None:
    assert LLMConfig().backend == "local"
    assert LLMConfig(base_urls=["http://127.0.0.1:1/v1"], model="m").backend == "openai"
    public = LLMConfig(base_urls=["http://x/v1"], model="m", api_key="sk-secret").public()
    assert list(public)[-1] == "backend" and public["backend"] == "openai" and "api_key" not in public


def test_explicit_backend_is_validated_naming_the_option() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'vllm'") as err:
        LLMConfig(backend="vllm").validate()
    assert "--backend" in str(err.value)
    with pytest.raises(ConfigError, match="needs an endpoint"):
        LLMConfig(backend="openai", model="m").validate()
    with pytest.raises(ConfigError, match="takes no endpoint"):
        LLMConfig(backend="local", base_urls=["http://x/v1"], model="m").validate()


def test_local_backend_builds_without_loading_a_model() -> None:
    backend = make_backend(LLMConfig(backend="local", batch_size=4))
    assert backend.name == "local" and backend.batch_size == 4 and backend._engine is None


class _Echo:
    """A backend that answers every prompt with itself, reversed."""

    name, model = "echo", "echo-1"

    async def complete(self, requests: list[Request]) -> list[Completion]:
        return [Completion(text=r.messages[-1][1][::-1], finish_reason="stop", model=self.model) for r in requests]

    async def aclose(self) -> None:
        pass


def test_a_new_backend_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(client.BACKENDS, "echo", lambda config: _Echo())
    llm = make_llm(LLMConfig(backend="echo", cache=False))
    assert [c.text for c in llm.complete_sync([Request.chat("abc")])] == ["cba"]
