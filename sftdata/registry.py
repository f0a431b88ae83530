"""The stages of ``sftdata run``, in pipeline order: the one list everything else iterates.

Each name is a package ``sftdata/<name>/`` whose ``__init__`` defines ``SPEC``
(:class:`sftdata.core.stage.StageSpec`). ``sftdata run`` loops over :func:`specs`; the hash chain,
the config sections, ``sftdata run --list-keys``, the report and the dataset card follow the same
order. To add a stage, add its package and its name here (docs/architecture.md, "How to add a stage").
"""

from __future__ import annotations

import importlib

from .core.stage import StageSpec

STAGES: tuple[str, ...] = ("generate", "filter", "clean", "augment", "judge", "select", "export", "finetune",
                           "pairs", "dpo", "eval", "export_model", "report")

# stages registered at run time (a test's, a plugin's): (spec, the stage it follows; None: last)
_extra: list[tuple[StageSpec, str | None]] = []


def specs() -> tuple[StageSpec, ...]:
    """Every stage's StageSpec, in pipeline order."""
    found = [importlib.import_module(f"sftdata.{name}").SPEC for name in STAGES]
    for stage, after in _extra:
        names = [s.name for s in found]
        found.insert(names.index(after) + 1 if after in names else len(found), stage)
    _check_order(found)
    return tuple(found)


def names() -> tuple[str, ...]:
    return tuple(s.name for s in specs())


def spec(name: str) -> StageSpec:
    for found in specs():
        if found.name == name:
            return found
    raise KeyError(name)


def data_stages() -> tuple[str, ...]:
    """The stages whose outputs are records the next stage reads, in pipeline order."""
    return tuple(s.name for s in specs() if s.produces_data)


def register(stage: StageSpec, *, after: str | None = None) -> None:
    """Add a stage that is not a packaged one (a test's, a plugin's): right after ``after``, else last."""
    unregister(stage.name)
    _extra.append((stage, after))


def unregister(name: str) -> None:
    _extra[:] = [(s, a) for s, a in _extra if s.name != name]


def _check_order(found: list[StageSpec]) -> None:
    seen: set[str] = set()
    for stage in found:
        if stage.name in seen:
            raise RuntimeError(f"two stages are named {stage.name}")
        for earlier in stage.reads:
            if earlier not in seen:
                raise RuntimeError(f"stage {stage.name} reads {earlier}, which does not run before it")
        seen.add(stage.name)
