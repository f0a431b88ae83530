"""LLM requests fanned out to Ray workers (``llm.ray`` / ``--ray``): generate, judge and augment on a cluster.

The driver keeps everything that must have one owner: the :class:`~sftdata.llm.client.LLM` wrapper
with its response cache, spend ledger (so ``--max-requests`` / ``--max-cost`` hold for the whole
cluster: a request is admitted and reserved there before any worker sees it), request log and the
run directory's journals, committed in request order. Only the sending leaves the driver: each
request that passed the cache and the budget goes to one of ``ray_workers`` Ray actors (one per node
by default, spread over the nodes), each holding the ordinary openai backend over its share of the
``--base-url`` replicas, or a node-local endpoint (``http://localhost:8000/v1`` reaches the vLLM
server on each worker's own node). The answer comes straight back to the driver, which logs, pays
and caches it the moment it arrives, exactly as on one machine: so the output is byte-identical to
a one-process run, and a killed driver resumes with the same command without paying again for an
answered request.

A worker that dies (its process killed, its node lost) fails the requests it held: each is counted
as a failed attempt and sent again on another worker (Ray restarts the dead one), within
``--max-attempts``; nothing it had answered is asked again, because those answers are already in
the driver's cache. Why the cache is not per worker: SQLite on a network filesystem is not safe
for concurrent writers, and a cache per node would pay again for what another node answered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.errors import register_secret
from ..llm.base import Backend, Completion, Request, gather_or_cancel
from .runtime import connect

if TYPE_CHECKING:
    from ..llm.client import LLMConfig

BackendFactory = Callable[["LLMConfig"], Backend]  # llm.client's factory of the backend the workers hold

WORKER_PREFIX = "sftdata-llm-"  # the worker actors' names
WORKER_DIED = "WorkerDied"  # the error of a request whose every attempt lost its worker


class EndpointWorker:
    """A Ray actor's body: the openai backend of this worker's share of the endpoints."""

    def __init__(self, config: LLMConfig, make_inner: BackendFactory) -> None:
        register_secret(config.api_key)  # this process redacts it too
        config.validate()  # also registers the URLs' credentials as secrets here
        self._backend: Any = make_inner(config)
        self.sent = 0

    async def complete(self, request: Request) -> Completion:
        self.sent += 1
        return await self._backend.complete_one(request)

    async def close(self) -> None:
        await self._backend.aclose()


def shares(base_urls: list[str], workers: int) -> list[list[str]]:
    """Each worker's replicas: a disjoint round-robin share when there are enough, else all of them."""
    if len(base_urls) < workers:
        return [list(base_urls) for _ in range(workers)]
    return [base_urls[k::workers] for k in range(workers)]


class RayBackend:
    """The openai backend, its requests sent by Ray actors. Made by ``make_backend`` when ``config.ray``
    (``make_inner`` builds each worker's backend there)."""

    def __init__(self, config: LLMConfig, make_inner: BackendFactory) -> None:
        self.name = config.backend or "openai"  # the cache key's: a run may move between one machine and a cluster
        self.model = config.model or ""
        self._config = config
        self._make_inner = make_inner
        self._workers: list[Any] = []
        self._in_flight: list[int] = []
        self.sent_per_worker: list[int] = []
        self.worker_failures = 0  # attempts lost to a dead worker

    def _start(self) -> None:
        ray = connect(self._config.ray or "")
        count = self._config.ray_workers or len([n for n in ray.nodes() if n.get("Alive")]) or 1
        actor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(EndpointWorker)
        inner = dataclasses.replace(self._config, ray=None, ray_workers=None)
        run = os.urandom(3).hex()  # named (``ray list actors`` shows them) per LLM, so two runs never clash
        self._workers = [actor.options(scheduling_strategy="SPREAD", name=f"{WORKER_PREFIX}{run}-{k}")  # one per
                         .remote(dataclasses.replace(inner, base_urls=urls), self._make_inner)  # node if it can
                         for k, urls in enumerate(shares(inner.base_urls, count))]
        self._in_flight = [0] * count
        self.sent_per_worker = [0] * count

    def _pick(self, avoid: int | None) -> int:
        """The worker with the fewest requests in flight (not ``avoid``, the one that just failed)."""
        candidates = [k for k in range(len(self._workers)) if k != avoid] or [0]
        return min(candidates, key=lambda k: (self._in_flight[k], k))

    async def complete_one(self, request: Request) -> Completion:
        from ray.exceptions import RayActorError

        if not self._workers:
            self._start()
        failed: int | None = None
        detail = ""
        for lost in range(self._config.max_attempts):
            k = self._pick(failed)
            self._in_flight[k] += 1
            self.sent_per_worker[k] += 1
            try:
                completion: Completion = await self._workers[k].complete.remote(request)
            except RayActorError as exc:  # the worker died with the request: a failed attempt
                self.worker_failures += 1
                failed, detail = k, f"worker {k}: {type(exc).__name__}"
                await asyncio.sleep(min(self._config.retry_base * 2 ** lost, 10.0))
                continue
            finally:
                self._in_flight[k] -= 1
            completion.attempts += lost
            return completion
        return Completion.failure(WORKER_DIED, detail, attempts=self._config.max_attempts)

    async def complete(self, requests: list[Request]) -> list[Completion]:
        return await gather_or_cancel(self.complete_one(r) for r in requests)

    def summary(self) -> dict[str, Any]:
        """For stats.json: how the requests spread over the workers (attempts, retries included)."""
        return {"workers": len(self.sent_per_worker), "sent_per_worker": list(self.sent_per_worker),
                "worker_failures": self.worker_failures}

    async def aclose(self) -> None:
        if not self._workers:
            return
        import ray

        try:
            await asyncio.gather(*(worker.close.remote() for worker in self._workers), return_exceptions=True)
        finally:
            for worker in self._workers:
                ray.kill(worker)
            self._workers = []
