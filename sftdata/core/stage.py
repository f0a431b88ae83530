"""The stage contract: what every stage package exposes so that ``sftdata run``, the stage hash chain,
the CLI and the report can treat it like any other. See docs/architecture.md, "How to add a stage".

A stage package ``sftdata/<stage>/`` holds ``config.py`` (its one settings dataclass, fields declared
with :func:`sftdata.core.settings.setting`), the library function that does the work over records,
and a ``SPEC = StageSpec(...)`` in its ``__init__``. Importing the package must stay cheap (no torch,
no numpy at import): the run function imports what it needs when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class StageContext(Protocol):
    """What ``sftdata run`` hands a stage's ``run`` function."""

    out: Path  # this stage's own directory inside the run directory
    run_dir: Path  # the whole run directory
    seed: int
    lang: str | None
    progress: bool

    def log(self, message: str) -> None: ...

    def llm_config(self, section: str = "llm") -> Any:
        """The resolved :class:`sftdata.llm.client.LLMConfig` of the run's ``llm`` section (or another,
        e.g. ``judge_llm`` for a stage that talks to its own endpoint)."""

    def data(self) -> list[Path]:
        """The records the last data-producing stage wrote (the seeds when none ran before)."""

    def seed_files(self) -> list[Path]: ...

    def output_of(self, stage: str) -> list[Path] | None:
        """What an earlier stage of this run produced, or None when it is off or has not run."""


@dataclass
class StageResult:
    outputs: list[Path]  # files or directories the stage produced (records for a data stage)
    summary: dict[str, Any]  # the stage's summary; its numbers go in the end-of-run table


@dataclass(frozen=True)
class StageSpec:
    name: str  # the config section, the subdirectory of the run directory, the CLI command
    config: type  # the settings dataclass
    run: Callable[[StageContext, Any], StageResult]
    help: str  # one line for `sftdata --help` and the config listing
    uses_llm: bool = False  # its hash covers the llm section; its requests go through the LLM layer
    produces_data: bool = True  # its outputs are records that the next stage reads
    enabled_by_default: bool = True  # False: a `sftdata run` config switches it on with `<stage>: {}`
    summary_keys: tuple[str, ...] = field(default=("accepted", "rejected", "records", "seconds"))
