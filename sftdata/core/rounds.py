"""The machinery every LLM-driven stage shares: rounds, checkpoints, resume, budget, Ctrl-C, progress, stats.

A stage works in rounds. Each round builds its requests from the stage's state alone, sends them
concurrently, and commits the results in request order, then :func:`run_stage` checkpoints. So:

- with the same cache and seed, a rerun writes byte-identical files (order never depends on timing);
- a kill mid-round loses nothing: on restart the journals roll back to the last checkpoint and the
  round is redone, its paid requests answered from the cache;
- a budget or Ctrl-C stop lands between rounds or rolls back to one, with state saved.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol

from ..llm.client import LLM, LLMConfig, LLMStats
from .errors import BudgetExhausted, ConfigError
from .rundir import RunDir, strip_secrets
from .settings import resumable

if TYPE_CHECKING:
    from tqdm import tqdm

# LLM settings that may change between a run and its resume without invalidating what was done (the
# budget, concurrency, timeouts: field metadata, see core.settings); a stage adds its own (run_stage)
RESUMABLE_KEYS = frozenset(resumable(LLMConfig))


class Stage(Protocol):
    """One LLM-driven stage, as :func:`run_stage` drives it."""

    def restore(self, rundir: RunDir, state: dict[str, Any] | None) -> None:
        """Rebuild in-memory state from the (rolled back) journals and the last checkpoint's state."""

    async def run_round(self, llm: LLM, round_no: int) -> None:
        """Send one round of requests and append its results to the journals, in request order."""

    def done(self) -> bool: ...

    def state(self) -> dict[str, Any]:
        """Small JSON state saved with each checkpoint."""

    def progress(self) -> tuple[int, int, str]:
        """(done, target, postfix text) for the progress bar."""

    def summary(self) -> dict[str, Any]: ...


def check_resumable(rundir: RunDir, config: dict[str, Any], may_change: Iterable[str] = RESUMABLE_KEYS) -> None:
    """Refuse to resume a run directory that holds a run made with different settings (other than
    ``may_change``)."""
    may_change = frozenset(may_change)
    previous = rundir.read_json("config.json")
    if not previous:
        return
    # compared as written: URLs with their credentials blanked, file names as JSON escapes
    comparable = json.loads(json.dumps(strip_secrets(config), default=str))
    changed = [key for key in sorted(set(previous) | set(comparable))
               if key not in may_change and previous.get(key) != comparable.get(key)
               and not (isinstance(previous.get(key), dict)
                        and _same_dict(previous[key], comparable.get(key), may_change))]
    if changed:
        key = changed[0]
        raise ConfigError(
            f"{rundir.path} holds a run made with other settings ({key}: {previous.get(key)!r} -> "
            f"{comparable.get(key)!r}); re-run with --fresh to start over, or choose another --out", "--out")


def _same_dict(old: dict, new: Any, may_change: frozenset[str]) -> bool:
    if not isinstance(new, dict):
        return False
    keys = (set(old) | set(new)) - may_change
    return all(old.get(k) == new.get(k) for k in keys)


def run_stage(stage: Stage, rundir: RunDir, llm: LLM, config: dict[str, Any], *,
              progress: bool = True, desc: str = "", resumable_keys: Iterable[str] = ()) -> dict[str, Any]:
    """Run ``stage`` to completion (or budget / Ctrl-C), resuming from ``rundir``. Returns the summary.

    ``resumable_keys``: the stage's own settings that may change on a resume (field metadata)."""
    check_resumable(rundir, config, RESUMABLE_KEYS | set(resumable_keys))
    rundir.write_config(config)
    state = rundir.resume()
    if state and "llm" in state:
        llm.stats = LLMStats(**state["llm"])
    round_no = state.get("round", 0) if state else 0
    stage.restore(rundir, state.get("stage") if state else None)
    started = time.perf_counter()
    from tqdm import tqdm  # here, not at import: `sftdata --help` and `--dry-run` draw no bar

    # smoothing=0: the ETA is (target - done) at the average rate since the start, which a slow first
    # round does not throw off the way tqdm's moving average of a few round-end jumps does
    bar = tqdm(desc=desc, unit="task", disable=not progress, dynamic_ncols=True, leave=True, smoothing=0)
    try:
        return run_interruptibly(_loop(stage, rundir, llm, round_no, started, bar, desc))
    finally:
        bar.close()
        rundir.close()


STOPPING = "\nstopping... (the last finished round is saved; the same command resumes)\n"


def run_interruptibly(coro: Any) -> Any:
    """``asyncio.run(coro)``, but Ctrl-C says "stopping..." at once, cancels the work in flight and raises
    KeyboardInterrupt without waiting for it to wind down.

    asyncio.run waits for its thread pool on the way out (up to 5 minutes), and the local engine
    generates a whole batch in a pool thread: that was the minute or two a Ctrl-C took. The journals
    and checkpoints are complete at every moment (a round is redone from the last checkpoint, its paid
    answers from the cache), so nothing is lost by not waiting; the CLI exits without joining the thread.
    """
    import asyncio  # here, not at import: asyncio is a tenth of a second of every `sftdata` start

    loop = asyncio.new_event_loop()
    task = loop.create_task(coro)
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        if interrupted:
            return
        interrupted = True
        sys.stderr.write(STOPPING)
        sys.stderr.flush()
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        handled = True
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no signals here
        handled = False
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()  # shuts the thread pool down without waiting for a batch still generating


async def _loop(stage: Stage, rundir: RunDir, llm: LLM, round_no: int, started: float, bar: tqdm,
                desc: str = "") -> dict:
    import asyncio

    ticker = asyncio.create_task(_tick(bar, stage, llm)) if not bar.disable else None
    try:
        while not stage.done():
            await stage.run_round(llm, round_no)
            round_no += 1
            rundir.checkpoint({"round": round_no, "stage": stage.state(), "llm": asdict(llm.stats)})
            _write_stats(stage, rundir, llm, started)
            _update_bar(bar, stage, llm)
            if llm.exhausted:
                raise BudgetExhausted(_budget_message(llm))
        finish = getattr(stage, "finish", None)  # optional: tidy the journals of a finished stage
        if finish is not None:
            finish(rundir)
        if llm.stats.cached * 10 < llm.stats.sent:  # a mostly fresh run: its rate is the backend's
            from ..estimate import record_speed
            record_speed(llm.backend.name, llm.config.model or "", llm.stats.sent, llm.stats.seconds,
                         f"a {desc or 'stage'} run")
        return _write_stats(stage, rundir, llm, started, finished=True)
    finally:
        if ticker is not None:
            ticker.cancel()
        await llm.aclose()


TICK_SECONDS = 1.0


async def _tick(bar: tqdm, stage: Stage, llm: LLM) -> None:
    """Redraw the bar every second while a round runs: requests and tokens as they move, elapsed, ETA."""
    import asyncio

    while True:
        await asyncio.sleep(TICK_SECONDS)
        _update_bar(bar, stage, llm)


def _budget_message(llm: LLM) -> str:
    cfg = llm.config
    what = (f"--max-requests {cfg.max_requests}" if cfg.max_requests is not None
            and llm.spend.requests >= cfg.max_requests else f"--max-cost {cfg.max_cost}")
    return f"budget reached ({what}; {llm.spend.requests} requests paid, ${llm.spend.cost:.4f})"


def _update_bar(bar: tqdm, stage: Stage, llm: LLM) -> None:
    done, target, postfix = stage.progress()
    bar.total = target
    bar.n = min(done, target) if target else done
    cost = f" ${llm.spend.cost:.3f}" if llm.config.price_in is not None else ""
    live = llm.live  # answers of the round still running, not yet in llm.stats
    answered = llm.stats.succeeded + llm.stats.failed + live.answered
    tokens = llm.stats.prompt_tokens + llm.stats.completion_tokens + live.tokens + live.decoding
    flying = f" ({live.in_flight} in flight)" if live.in_flight else ""
    bar.set_postfix_str(f"{postfix} req={answered}/{llm.stats.sent}{flying}+{llm.stats.cached}c tok={tokens}{cost}",
                        refresh=False)
    bar.refresh()


def _summary(stage: Stage, llm: LLM, started: float) -> dict[str, Any]:
    summary = dict(stage.summary())
    # stats follow the checkpoints (a rolled-back round is counted once); paid_* is what every run in
    # this directory paid, rolled-back rounds and requests cut off by a kill included
    summary["llm"] = {**asdict(llm.stats), **llm.spend.summary(), "backend": llm.backend.name,
                      "model": llm.model_name}
    cluster = getattr(llm.backend, "summary", None)  # --ray: how the requests spread over the workers
    if cluster is not None:
        summary["llm"]["ray"] = cluster()
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def _write_stats(stage: Stage, rundir: RunDir, llm: LLM, started: float, finished: bool = False) -> dict[str, Any]:
    """Write stats.json; return the summary it holds (without its ``finished`` flag)."""
    summary = _summary(stage, llm, started)
    rundir.write_json("stats.json", {**summary, "finished": finished})
    return summary
