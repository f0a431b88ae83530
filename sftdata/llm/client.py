"""The LLM wrapper every stage uses: cache first, then the backend; budget, log and counts around it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..core.errors import EndpointUnavailable, register_secret
from ..core.rundir import RunDir
from .base import Backend, Completion, Request, gather_or_cancel
from .cache import ResponseCache
from .config import BACKENDS, LLMConfig
from .spend import SpendLedger

BUDGET = "BudgetExhausted"  # the error of a request the budget did not allow to be sent


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


@dataclass
class LiveCounts:
    """What a progress bar can show while a round is still running (LLMStats is settled at its end)."""

    in_flight: int = 0  # requests sent and not answered yet
    answered: int = 0  # answers arrived and not yet counted in LLMStats (which settles per complete())
    tokens: int = 0  # their prompt + completion tokens
    decoding: int = 0  # tokens of a local batch still generating, step by step (its answers replace them)

    def arrived(self, completion: Completion) -> None:
        self.answered += 1
        self.tokens += completion.usage.prompt_tokens + completion.usage.completion_tokens

    def decoded(self, tokens: int) -> None:
        self.decoding += tokens

    def settled(self) -> None:
        self.answered = self.tokens = self.decoding = 0


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
        self.spend = SpendLedger(rundir)  # what was paid across restarts: the budget counts this
        self.live = LiveCounts()
        self.exhausted = False
        self._consecutive_failures = 0
        if rundir is not None:  # both logs exist from the start, empty while nothing failed
            rundir.journal("requests.jsonl")
            rundir.journal("failures.jsonl")

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
        """Whether ``request`` may be sent: the ledger holds what every run in this directory paid
        (answers a rolled-back round gets back from the cache were paid all the same) plus the
        worst case of every request in flight."""
        cfg = self.config
        if cfg.max_requests is not None and self.spend.requests >= cfg.max_requests:
            return False
        return cfg.max_cost is None or self.spend.cost + self._worst_case_cost(request) <= cfg.max_cost

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
        final = [completion for _, completion in answered]
        if self.config.reasoning != "keep":  # the cache keeps it, so a later run with keep still has it
            final = [replace(c, reasoning="") if c.reasoning else c for c in final]
            answered = [(key, c) for (key, _), c in zip(answered, final)]
        for request, (key, completion) in zip(requests, answered):
            self._account(request, key, completion)
        self.live.settled()
        if self._consecutive_failures >= self.config.fail_after:
            last = next(c for c in reversed(final) if c.error and c.error != BUDGET)
            raise EndpointUnavailable(
                f"the endpoint failed {self._consecutive_failures} requests in a row after "
                f"{self.config.max_attempts} attempts each; last error: {last.error}: {last.error_detail}")
        return final

    def _lookup(self, request: Request) -> tuple[str, Completion | None, str]:
        """The cache key of ``request``, its cached or budget-denied answer (None: it is to be sent)
        and its ledger ticket. Called in request order, so the budget admits the same requests on
        every run."""
        # a backend whose answers depend on more than its model name (an adapter) says so: cache_identity
        key = request.cache_key(self.backend.name, getattr(self.backend, "cache_identity", self.backend.model))
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            return key, hit, ""
        if not self._allowed(request):
            self.exhausted = True
            return key, Completion.failure(BUDGET, attempts=0), ""
        self.stats.sent += 1
        return key, None, self.spend.reserve(self._worst_case_cost(request))

    def _arrived(self, request: Request, key: str, ticket: str, completion: Completion) -> None:
        """An answer (or a final failure) is here: log and pay it before caching it, so that no
        answer is ever in the cache without its line in requests.jsonl and the ledger."""
        if ticket:
            self.spend.settle(ticket, self._cost(completion.usage.prompt_tokens, completion.usage.completion_tokens))
        self._log(request, key, completion)
        self._store(key, completion)

    async def _complete_each(self, requests: list[Request],
                             complete_one: Callable[[Request], Awaitable[Completion]]) -> list[tuple[str, Completion]]:
        """One task per request, each sent the moment it is looked up (the lookups before its first
        await run in request order) and cached the moment it arrives: a crash in the middle of a long
        batch never pays again for the answers that came before it."""
        async def one(request: Request) -> tuple[str, Completion]:
            key, answer, ticket = self._lookup(request)
            if answer is None:
                self.live.in_flight += 1
                try:
                    answer = await complete_one(request)
                finally:
                    self.live.in_flight -= 1
                self.live.arrived(answer)
                self._arrived(request, key, ticket, answer)
            elif answer.error != BUDGET:
                self._log(request, key, answer)
            return key, answer

        return await gather_or_cancel(one(r) for r in requests)

    async def _complete_batch(self, requests: list[Request]) -> list[tuple[str, Completion]]:
        """The local backend generates a whole batch at once; its answers are cached when it ends."""
        looked_up = [self._lookup(request) for request in requests]
        to_send = [i for i, (_, answer, _) in enumerate(looked_up) if answer is None]
        if to_send:
            self.live.in_flight += len(to_send)
            live_tokens = {"on_tokens": self.live.decoded} if getattr(self.backend, "live_tokens", False) else {}
            try:
                fresh = await self.backend.complete([requests[i] for i in to_send], **live_tokens)
            finally:
                self.live.in_flight -= len(to_send)
                self.live.decoding = 0  # the answers' own usage counts from here
            for completion in fresh:
                self.live.arrived(completion)
            for i, completion in zip(to_send, fresh):
                self._arrived(requests[i], looked_up[i][0], looked_up[i][2], completion)
                looked_up[i] = (looked_up[i][0], completion, "")
        for request, (key, answer, _) in zip(requests, looked_up):
            if answer is not None and answer.cached:
                self._log(request, key, answer)
        return [(key, answer) for key, answer, _ in looked_up if answer is not None]

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
        if self.rundir is not None and not completion.ok:
            self.rundir.journal("failures.jsonl").append({
                "key": key[:16], "tag": request.tag, "error": completion.error,
                "detail": completion.error_detail, "attempts": completion.attempts,
                "messages": request.message_dicts(),
            })

    def _log(self, request: Request, key: str, completion: Completion) -> None:
        """One line of requests.jsonl (never rolled back), written the moment the answer is known."""
        if self.rundir is None:
            return
        outcome = "cached" if completion.cached else ("ok" if completion.ok else f"error:{completion.error}")
        self.rundir.journal("requests.jsonl").append({
            "key": key[:16], "tag": request.tag, "backend": self.backend.name, "model": self.backend.model,
            "outcome": outcome, "finish_reason": completion.finish_reason, "attempts": completion.attempts,
            "latency_s": round(completion.latency_s, 4), "usage": asdict(completion.usage),
            "request_id": completion.request_id,
        })

    def complete_sync(self, requests: list[Request]) -> list[Completion]:
        import asyncio

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
    config.validate()
    if config.ray is not None:
        from ..cluster.llm import RayBackend  # ray only when asked for

        return RayBackend(config, BACKENDS[config.backend])
    return BACKENDS[config.backend](config)


def make_llm(config: LLMConfig, rundir: RunDir | None = None, cache_path: str | Path | None = None) -> LLM:
    config.validate()
    return LLM(config, make_backend(config), rundir=rundir, cache_path=cache_path)
