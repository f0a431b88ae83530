"""What was paid, across restarts: the ledger ``--max-cost`` and ``--max-requests`` are counted on.

``stats.json``'s request counts follow the checkpoints: a round cut by a kill is rolled back and
redone from the cache, so its answers come back free. Their price was paid all the same. The
ledger (``spend.jsonl`` in the run directory, never rolled back) records each request *before* it
leaves, at its worst-case cost, and its real cost when the answer arrives:

    {"sent": 17, "worst": 0.0021}      # request 17 leaves; counted at its worst case
    {"paid": 17, "cost": 0.0008}       # its answer came back; counted at what it cost

A request whose answer never came (the process was killed while it was in flight) keeps its
worst-case cost, so the spend the ledger reports never falls below what the endpoint billed and
the budget is never overrun, however often the run is killed.
"""

from __future__ import annotations

import os
from typing import Any

from ..core.rundir import Journal, RunDir

LEDGER = "spend.jsonl"


class SpendLedger:
    def __init__(self, rundir: RunDir | None = None) -> None:
        self._journal: Journal | None = rundir.journal(LEDGER) if rundir is not None else None
        self.requests = 0  # requests sent, over every run in this directory
        self.cost = 0.0  # USD: real cost of answered requests + worst case of unanswered ones
        self._worst: dict[Any, float] = {}
        self._prefix = os.urandom(4).hex() + "-"  # tickets of different processes never clash
        self._next = 0
        if self._journal is not None:
            for row in self._journal.read():
                self._replay(row)
            self._worst.clear()

    def _replay(self, row: dict[str, Any]) -> None:
        if "sent" in row:
            self.requests += 1
            self.cost += row.get("worst", 0.0)
            self._worst[row["sent"]] = row.get("worst", 0.0)
        elif "paid" in row and row["paid"] in self._worst:
            self.cost += row.get("cost", 0.0) - self._worst.pop(row["paid"])

    def reserve(self, worst: float) -> str:
        """Record a request about to be sent; returns its ticket for :meth:`settle`."""
        self._next += 1
        ticket = f"{self._prefix}{self._next}"
        self._add({"sent": ticket, "worst": worst})
        return ticket

    def settle(self, ticket: str, cost: float) -> None:
        """Record what the answered (or finally failed) request ``ticket`` cost."""
        self._add({"paid": ticket, "cost": cost})

    def _add(self, row: dict[str, Any]) -> None:
        self._replay(row)
        if self._journal is not None:
            self._journal.append(row)

    def summary(self) -> dict[str, Any]:
        return {"paid_requests": self.requests, "paid_cost_usd": round(self.cost, 6)}
