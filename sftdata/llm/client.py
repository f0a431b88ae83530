"""The LLM wrapper every stage uses: cache first, then the backend; budget, log and counts around it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, EndpointUnavailable, register_secret
from ..core.rundir import RunDir
from ..core.settings import setting
from .base import Backend, Completion, Request
from .cache import ResponseCache

BUDGET = "BudgetExhausted"  # the error of a request the budget did not allow to be sent


@dataclass
class LLMConfig:
    """Resolved LLM options: the ``llm:`` section of ``sftdata run`` and the LLM options of every command
    that calls a model. ``api_key`` is never written anywhere (see :meth:`public`)."""

    base_urls: list[str] = setting(
        list, key="base_url", option="--base-url", envvar="OPENAI_BASE_URL",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM), https://api.openai.com/v1. "
             "Repeat to spread requests over replicas. None: the embedded local model.")
    model: str | None = setting(None, envvar="SFTDATA_MODEL",
                                help="Model name at the endpoint, or a local HF model directory. "
                                     "Default: the embedded SmolLM2-135M-Instruct.")
    api_key: str | None = setting(None, hashed=False, envvar="OPENAI_API_KEY",
                                  help="API key. Never written to the run directory, logs or cache.")
    adapter: str | None = setting(None, cli=False, config=False, help="A PEFT adapter on the local model.")
    concurrency: int = setting(16, hashed=False, help="Requests in flight at once.")
    timeout: float = setting(120.0, hashed=False, help="Seconds before one attempt is abandoned and retried.")
    max_attempts: int = setting(6, hashed=False, help="Attempts per request (429, 5xx, timeouts, resets, "
                                                      "malformed replies are retried).")
    retry_base: float = setting(0.5, hashed=False, help="First backoff delay in seconds; doubles per attempt, "
                                                        "with jitter. Retry-After from the server wins.")
    fail_after: int = setting(5, hashed=False, cli=False, config=False,
                              help="Consecutive failed requests that make the endpoint unusable (exit 3).")
    price_in: float | None = setting(None, help="USD per million prompt tokens (for the cost estimate).")
    price_out: float | None = setting(None, help="USD per million completion tokens.")
    max_cost: float | None = setting(None, hashed=False, help="Stop cleanly before spending more than this (USD).")
    max_requests: int | None = setting(None, hashed=False, help="Stop cleanly after this many requests sent.")
    cache: bool = setting(True, flag="--cache/--no-cache",
                          help="Read and write the response cache (--no-cache: neither).")
    batch_size: int = setting(32, hashed=False, help="Local model: prompts generated together in one batch.")

    @property
    def backend(self) -> str:
        return "openai" if self.base_urls else "local"

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("api_key")
        data["backend"] = self.backend
        return data

    def validate(self) -> None:
        for name in ("concurrency", "max_attempts", "batch_size", "fail_after"):
            if getattr(self, name) < 1:
                raise ConfigError("must be at least 1", f"--{name.replace('_', '-')}")
        if self.timeout <= 0:
            raise ConfigError("must be positive", "--timeout")
        if self.max_requests is not None and self.max_requests < 1:
            raise ConfigError("must be at least 1", "--max-requests")
        for name in ("price_in", "price_out", "max_cost"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError("must not be negative", f"--{name.replace('_', '-')}")
        if self.max_cost is not None and (self.price_in is None or self.price_out is None):
            raise ConfigError("needs --price-in and --price-out to know what a request costs", "--max-cost")
        if self.base_urls and not self.model:
            raise ConfigError("an endpoint needs a model name", "--model")


@dataclass
class LLMStats:
    sent: int = 0  # requests that reached the backend (cache misses)
    succeeded: int = 0
    failed: int = 0
    cached: int = 0
    denied_by_budget: int = 0
    attempts: int = 0
    truncated: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0


class LLM:
    def __init__(self, config: LLMConfig, backend: Backend, rundir: RunDir | None = None,
                 cache_path: str | Path | None = None) -> None:
        config.validate()
        register_secret(config.api_key)
        self.config = config
        self.backend = backend
        self.rundir = rundir
        if cache_path is None and rundir is not None:
            cache_path = rundir.file("cache.sqlite")
        self.cache = ResponseCache(cache_path) if (config.cache and cache_path is not None) else None
        self.stats = LLMStats()
        self.exhausted = False
        self._consecutive_failures = 0
        self._reserved_cost = 0.0

    @property
    def model_name(self) -> str:
        return self.backend.model

    # ------------------------------------------------------------ budget
    def _cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        if self.config.price_in is None or self.config.price_out is None:
            return 0.0
        return (prompt_tokens * self.config.price_in + completion_tokens * self.config.price_out) / 1e6

    def _worst_case_cost(self, request: Request) -> float:
        # one token per 2 characters overestimates every real tokenizer on English and Chinese alike
        prompt_chars = sum(len(content) for _, content in request.messages)
        return self._cost(prompt_chars / 2 + 16, request.max_tokens)

    def _allowed(self, request: Request) -> bool:
        cfg = self.config
        if cfg.max_requests is not None and self.stats.sent >= cfg.max_requests:
            return False
        if cfg.max_cost is not None:
            worst = self._worst_case_cost(request)
            if self.stats.cost_usd + self._reserved_cost + worst > cfg.max_cost:
                return False
            self._reserved_cost += worst
        return True

    # ------------------------------------------------------------ completing
    async def complete(self, requests: list[Request]) -> list[Completion]:
        """Complete ``requests`` in order. Budget-denied ones come back with ``error == BUDGET``.

        Raises EndpointUnavailable once ``fail_after`` requests in a row failed every retry.
        """
        started = time.perf_counter()
        complete_one = getattr(self.backend, "complete_one", None)
        if complete_one is not None:
            answered = await self._complete_each(requests, complete_one)
        else:
            answered = await self._complete_batch(requests)
        self.stats.seconds += time.perf_counter() - started
        self._reserved_cost = 0.0
        final = [completion for _, completion in answered]
        for request, (key, completion) in zip(requests, answered):
            self._account(request, key, completion)
        if self._consecutive_failures >= self.config.fail_after:
            last = next(c for c in reversed(final) if c.error and c.error != BUDGET)
            raise EndpointUnavailable(
                f"the endpoint failed {self._consecutive_failures} requests in a row after "
                f"{self.config.max_attempts} attempts each; last error: {last.error}: {last.error_detail}")
        return final

    def _lookup(self, request: Request) -> tuple[str, Completion | None]:
        """The cache key of ``request`` and its cached or budget-denied answer, or None when it is to
        be sent. Called in request order, so the budget admits the same requests on every run."""
        key = request.cache_key(self.backend.name, self.backend.model)
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            return key, hit
        if not self._allowed(request):
            self.exhausted = True
            return key, Completion.failure(BUDGET, attempts=0)
        self.stats.sent += 1
        return key, None

    async def _complete_each(self, requests: list[Request],
                             complete_one: Callable[[Request], Awaitable[Completion]]) -> list[tuple[str, Completion]]:
        """One task per request, each sent the moment it is looked up (the lookups before its first
        await run in request order) and cached the moment it arrives: a crash in the middle of a long
        batch never pays again for the answers that came before it."""
        async def one(request: Request) -> tuple[str, Completion]:
            key, answer = self._lookup(request)
            if answer is None:
                answer = await complete_one(request)
                self._store(key, answer)
            return key, answer

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def _complete_batch(self, requests: list[Request]) -> list[tuple[str, Completion]]:
        """The local backend generates a whole batch at once; its answers are cached when it ends."""
        looked_up = [self._lookup(request) for request in requests]
        to_send = [i for i, (_, answer) in enumerate(looked_up) if answer is None]
        if to_send:
            fresh = await self.backend.complete([requests[i] for i in to_send])
            for i, completion in zip(to_send, fresh):
                self._store(looked_up[i][0], completion)
                looked_up[i] = (looked_up[i][0], completion)
        return [(key, answer) for key, answer in looked_up if answer is not None]

    def _store(self, key: str, completion: Completion) -> None:
        if completion.ok and self.cache is not None:
            self.cache.put(key, completion)

    def _account(self, request: Request, key: str, completion: Completion) -> None:
        stats = self.stats
        if completion.error == BUDGET:
            stats.denied_by_budget += 1
            return
        if completion.cached:
            stats.cached += 1
        else:
            stats.attempts += completion.attempts
            if completion.ok:
                stats.succeeded += 1
                self._consecutive_failures = 0
            else:
                stats.failed += 1
                self._consecutive_failures += 1
            stats.prompt_tokens += completion.usage.prompt_tokens
            stats.completion_tokens += completion.usage.completion_tokens
            stats.cost_usd += self._cost(completion.usage.prompt_tokens, completion.usage.completion_tokens)
        stats.truncated += completion.truncated
        if self.rundir is None:
            return
        outcome = "cached" if completion.cached else ("ok" if completion.ok else f"error:{completion.error}")
        self.rundir.journal("requests.jsonl").append({
            "key": key[:16], "tag": request.tag, "backend": self.backend.name, "model": self.backend.model,
            "outcome": outcome, "finish_reason": completion.finish_reason, "attempts": completion.attempts,
            "latency_s": round(completion.latency_s, 4), "usage": asdict(completion.usage),
            "request_id": completion.request_id,
        })
        if not completion.ok:
            self.rundir.journal("failures.jsonl").append({
                "key": key[:16], "tag": request.tag, "error": completion.error,
                "detail": completion.error_detail, "attempts": completion.attempts,
                "messages": request.message_dicts(),
            })

    def complete_sync(self, requests: list[Request]) -> list[Completion]:
        return asyncio.run(self._complete_and_close(requests))

    async def _complete_and_close(self, requests: list[Request]) -> list[Completion]:
        try:
            return await self.complete(requests)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        await self.backend.aclose()
        if self.cache is not None:
            self.cache.close()
            self.cache = None


def make_backend(config: LLMConfig) -> Backend:
    if config.backend == "openai":
        from .openai_backend import OpenAIBackend, RetryPolicy

        return OpenAIBackend(config.base_urls, config.model or "", config.api_key,
                             concurrency=config.concurrency, timeout=config.timeout,
                             retry=RetryPolicy(max_attempts=config.max_attempts, base_delay=config.retry_base))
    from .local import LocalBackend

    return LocalBackend(model=config.model, adapter=config.adapter, batch_size=config.batch_size)


def make_llm(config: LLMConfig, rundir: RunDir | None = None, cache_path: str | Path | None = None) -> LLM:
    config.validate()
    return LLM(config, make_backend(config), rundir=rundir, cache_path=cache_path)
