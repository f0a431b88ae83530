"""How many threads torch should use for generation right now, by measuring.

On an idle 2-core machine two OpenMP threads make batched generation about 1.8x faster. When another
process holds one of the cores, every parallel op waits at a barrier for a thread that is not
running, and the same work runs 10-30x slower than with one thread. Which case holds changes while
we run, so :class:`ThreadChooser` times a small matmul of the model's shape both ways now and then
and keeps the faster setting. ``SFTDATA_THREADS=N`` fixes the count instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

PROBE_EVERY_S = 5.0  # seconds of generation between two measurements


class ThreadChooser:
    def __init__(self, dtype: Any, hidden: int = 576, out: int = 1536, rows: int = 32) -> None:
        self.fixed = _fixed_threads()
        self.most = max(1, torch.get_num_threads())
        self._x = torch.randn(rows, hidden).to(dtype)
        self._w = torch.randn(out, hidden).to(dtype)
        self._last_probe = float("-inf")
        self.choice = self.fixed or self.most

    def maybe_adjust(self) -> int:
        """Re-measure if it is time; set and return the thread count to use."""
        if self.fixed:
            torch.set_num_threads(self.fixed)
            return self.fixed
        now = time.perf_counter()
        if now - self._last_probe >= PROBE_EVERY_S and self.most > 1:
            self.choice = self._probe()
            self._last_probe = time.perf_counter()
        torch.set_num_threads(self.choice)
        return self.choice

    def restore(self) -> None:
        torch.set_num_threads(self.most)

    def _probe(self) -> int:
        one = self._median(1, repeats=5)
        # under contention a single parallel run takes 10-100x longer: stop at the first slow one
        all_cores = self._median(self.most, repeats=5, give_up=2 * one)
        return self.most if all_cores < one else 1

    def _median(self, threads: int, repeats: int, give_up: float = float("inf")) -> float:
        torch.set_num_threads(threads)
        timings = []
        with torch.inference_mode():
            F.linear(self._x, self._w)
            for _ in range(repeats):
                started = time.perf_counter()
                F.linear(self._x, self._w)
                timings.append(time.perf_counter() - started)
                if timings[-1] > give_up:
                    return timings[-1]
        return sorted(timings)[len(timings) // 2]  # a lucky minimum says little under load


@contextmanager
def one_thread() -> Iterator[None]:
    """For memory-bound bulk work (dtype conversion at load): one thread is never the slow choice."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fixed_threads() -> int | None:
    value = os.environ.get("SFTDATA_THREADS")
    if not value:
        return None
    try:
        return max(1, int(value))
    except ValueError:
        from ...core.errors import ConfigError

        raise ConfigError(f"SFTDATA_THREADS={value!r} is not a number of threads") from None
