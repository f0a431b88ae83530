"""The stage contract: what every stage package exposes so that ``sftdata run``, the stage hash chain,
the CLI and the report can treat it like any other. See docs/architecture.md, "How to add a stage".

A stage package ``sftdata/<stage>/`` holds ``config.py`` (its one settings dataclass, fields declared
with :func:`sftdata.core.settings.setting`), the library function that does the work over records,
``step.py`` (``run(ctx, config) -> StageResult``: the stage as one step of ``sftdata run``) and a
``SPEC = StageSpec(...)`` in its ``__init__``. Importing the package must stay cheap (no torch, no
numpy at import): the run function imports what it needs when it runs. ``sftdata/registry.py``
lists the stages in pipeline order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import DataError

# the numbers of a stage's summary shown in the end-of-run table and kept in its stage.json
SUMMARY_KEYS = ("accepted", "rejected", "kept", "instances", "instructions", "records", "train_loss", "eval_loss",
                "seconds", "written", "loss", "rouge_l")


class StageContext(Protocol):
    """What ``sftdata run`` hands a stage's ``run`` function."""

    out: Path  # this stage's own directory inside the run directory
    run_dir: Path  # the whole run directory
    seed: int
    lang: str | None
    seeds: list[str]  # the seed files the config names (empty: the packaged ones)
    progress: bool

    def log(self, message: str) -> None: ...

    def llm_config(self) -> Any:
        """The resolved :class:`sftdata.llm.client.LLMConfig` of the run's ``llm`` section."""

    def data(self) -> list[Path]:
        """The records the last data-producing stage wrote (the seeds when none ran before)."""

    def seed_files(self) -> list[Path]: ...

    def output_of(self, stage: str) -> list[Path] | None:
        """What an earlier stage of this run produced, or None when it is off or has not run."""

    def config_of(self, stage: str) -> Any:
        """Another stage's settings (None when it is off)."""


@dataclass
class StageResult:
    outputs: list[Path]  # files or directories the stage produced (records for a data stage)
    summary: dict[str, Any]  # the stage's summary; its SUMMARY_KEYS numbers go in the end-of-run table

    def short(self, keys: Sequence[str] = SUMMARY_KEYS) -> dict[str, Any]:
        """A few numbers for the end-of-run table and stage.json (floats to 4 significant digits)."""
        return {k: _round(self.summary[k]) for k in keys
                if k in self.summary and isinstance(self.summary[k], (int, float, str))}


def _round(value: Any) -> Any:
    return float(f"{value:.4g}") if isinstance(value, float) else value


@dataclass(frozen=True)
class StageSpec:
    name: str  # the config section, the subdirectory of the run directory, the CLI command
    config: type  # the settings dataclass
    run: Callable[[StageContext, Any], StageResult]
    help: str  # one line for `sftdata --help` and `sftdata run --list-keys`
    uses_llm: bool = False  # its hash covers the llm section; its requests go through the LLM layer
    produces_data: bool = True  # its outputs are records that the next stage reads (ctx.data())
    reads: tuple[str, ...] = ()  # earlier stages whose outputs it reads besides ctx.data()
    # (config, lang, input records) -> (requests, prompt tokens, completion tokens, records made; 0: unknown),
    # optionally a fifth item, a dict of details shown under the stage: what a fresh run asks of the LLM,
    # for `sftdata run --dry-run`. It may take `acceptance=` and `stages=` (the run's sections, None: off).
    estimate: Callable[..., tuple] | None = None
    summary_keys: tuple[str, ...] = field(default=SUMMARY_KEYS)
    enabled_by_default: bool = True  # False: `sftdata run` runs it only when the config names its section


def kept(paths: list[Path], stage: str) -> list[Path]:
    """The non-empty files of ``paths``; an error naming the stage when every one is empty."""
    found = [p for p in paths if p.exists() and p.stat().st_size > 0]
    if not found:
        raise DataError(paths[-1], None, f"the {stage} stage kept no records; see its rejected.jsonl for why")
    return found
