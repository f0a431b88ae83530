"""The LLM protocol: one request type, one completion type, one async interface for every backend."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Request:
    """One chat request. ``tag`` says what it is for (logs and stats); it is not part of the cache key."""

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None
    tag: str = ""

    @classmethod
    def chat(cls, prompt: str, system: str | None = None, **params: Any) -> Request:
        messages = ((("system", system),) if system else ()) + (("user", prompt),)
        return cls(messages=messages, **params)

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def cache_key(self, backend: str, model: str) -> str:
        payload = {
            "backend": backend, "model": model, "messages": self.messages,
            "temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
            "stop": self.stop, "seed": self.seed,
        }
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Completion:
    """The outcome of one request. ``error`` is set (and ``text`` empty) when every retry failed."""

    text: str
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    request_id: str | None = None
    cached: bool = False
    latency_s: float = 0.0
    attempts: int = 1
    error: str | None = None  # error class name after the last attempt
    error_detail: str | None = None
    # a reasoning model's thinking (reasoning_content, or a leading <think> block of the content):
    # never part of ``text``, so never parsed as the answer; kept only with ``llm.reasoning: keep``
    reasoning: str = ""

    @classmethod
    def failure(cls, error: str, detail: str | None = None, **fields: Any) -> Completion:
        """A request that failed for good: no text, ``error`` its class name, the detail capped."""
        return cls(text="", finish_reason="error", error=error,
                   error_detail=detail[:500] if detail is not None else None, **fields)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    def to_cache(self) -> dict[str, Any]:
        data = asdict(self)
        for transient in ("cached", "latency_s", "attempts", "error", "error_detail"):
            data.pop(transient)
        return data

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> Completion:
        usage = Usage(**data.pop("usage"))
        return cls(usage=usage, cached=True, attempts=0, **data)


class Backend(Protocol):
    """What a backend implements. The :class:`~sftdata.llm.client.LLM` wrapper adds cache, log, budget.

    A backend that sends requests one at a time (openai) also offers ``complete_one(request)``, which
    the wrapper then uses so that each request leaves as soon as it passed the cache and the budget.
    A backend that generates a whole batch at once (local) may set ``live_tokens = True`` and take
    ``on_tokens`` in ``complete``: a callable told the tokens processed as they are, for the progress bar.
    """

    name: str  # "openai" or "local"
    model: str

    async def complete(self, requests: list[Request]) -> list[Completion]:
        """Complete every request; never raises for one request's failure (it sets ``error``)."""
        ...

    async def aclose(self) -> None: ...


async def gather_or_cancel(awaitables: Any) -> list[Any]:
    """``asyncio.gather`` of ``awaitables`` that, when one fails, cancels and awaits the others before the
    error goes up: no request keeps sending or writing after its batch has failed."""
    import asyncio  # here, not at import: asyncio is a tenth of a second of every `sftdata` start

    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
