"""``sftdata run``: the whole pipeline from one config, in one run directory, resumable stage by stage.

Stages run in order, each in its own subdirectory of the run directory. Each stage's identity is a
hash of its resolved settings and of the stage before it, stored in ``<stage>/stage.json``. On a
rerun, a stage whose hash matches and which finished is skipped; the first stage whose settings
changed (or which never finished) runs again, and so does every stage after it, since their hashes
chain. A stage interrupted mid-way resumes itself where it can (generate, augment).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.config import apply_overrides, build, load_file, to_plain
from .core.errors import ConfigError
from .llm.client import LLMConfig

STAGE_ORDER = ["generate", "filter", "clean", "augment", "judge", "select", "export", "finetune", "pairs", "dpo",
               "eval", "report"]
OFF_BY_DEFAULT = {"judge", "select", "pairs", "dpo"}  # StageSpec.enabled_by_default=False: on with `judge: {}` in the config
# settings that do not change what a stage produces, so changing them does not re-run it
NOT_HASHED = {"concurrency", "timeout", "max_attempts", "retry_base", "max_requests", "max_cost", "progress",
              "api_key", "fail_after", "batch_size"}


@dataclass
class LLMSection:
    base_url: list[str] = field(default_factory=list)
    model: str | None = None
    api_key: str | None = None  # better: the OPENAI_API_KEY environment variable
    concurrency: int = 16
    timeout: float = 120.0
    max_attempts: int = 6
    retry_base: float = 0.5
    price_in: float | None = None
    price_out: float | None = None
    max_cost: float | None = None
    max_requests: int | None = None
    cache: bool = True
    batch_size: int = 32

    def to_llm_config(self) -> LLMConfig:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "base_url"}
        return LLMConfig(base_urls=list(self.base_url), **values)


@dataclass
class CleanSection:
    no_rule: list[str] = field(default_factory=list)
    mask_pii: bool = False
    outlier_z: float = 3.5
    outlier_short: bool = False  # also remove unusually short outputs (off: short labels are normal)


@dataclass
class ExportSection:
    formats: list[str] = field(default_factory=lambda: ["alpaca", "sharegpt", "messages"])
    split: list[float] = field(default_factory=lambda: [0.9, 0.05, 0.05])
    system: str | None = None
    hf: bool = False
    license: str | None = None

    def validate(self) -> None:
        """Bad formats or splits fail when the config loads, not after hours of generation."""
        from .export.stage import parse_formats, parse_split

        try:
            parse_formats(self.formats)
        except ConfigError as exc:
            raise ConfigError(exc.message, "--formats") from None
        parse_split(self.split)


@dataclass
class EvalSection:
    max_new_tokens: int = 128
    batch_size: int = 8
    max_len: int = 1024
    limit: int | None = None
    base: bool = True  # evaluate the base model beside the adapter


@dataclass
class ReportSection:
    pass


@dataclass
class Pipeline:
    """A resolved config: global settings, the LLM, and each stage's section (None when switched off)."""

    out: Path
    lang: str | None
    seed: int
    seeds: list[str]
    llm: LLMSection
    stages: dict[str, Any]

    def public(self) -> dict[str, Any]:
        data = {"out": str(self.out), "lang": self.lang, "seed": self.seed, "seeds": self.seeds,
                "llm": to_plain(self.llm), "stages": {k: to_plain(v) for k, v in self.stages.items()}}
        data["llm"].pop("api_key", None)
        return data


def _section_classes() -> dict[str, type]:
    # imported here: finetune pulls in torch, which `sftdata --help` should not pay for
    from .augment.config import AugmentConfig
    from .filter.rules import FilterConfig
    from .finetune.config import FinetuneConfig
    from .generate.config import GenerateConfig
    from .judge.config import JudgeConfig
    from .pairs.config import PairsConfig
    from .select.config import SelectConfig

    return {"generate": GenerateConfig, "filter": FilterConfig, "clean": CleanSection, "augment": AugmentConfig,
            "judge": JudgeConfig, "select": SelectConfig, "export": ExportSection, "finetune": FinetuneConfig, "pairs": PairsConfig, "dpo": FinetuneConfig,
            "eval": EvalSection, "report": ReportSection}


TOP_LEVEL = {"name", "out", "lang", "seed", "seeds", "llm", "progress", *STAGE_ORDER}
SET_BY_PIPELINE = {"finetune": {"data", "out", "eval_data"}, "dpo": {"data", "out", "eval_data", "method"},
                   "generate": {"seeds"}}


def load_pipeline(path: str | Path, overrides: list[str] = (), out: str | None = None) -> Pipeline:
    path = Path(path)
    raw = apply_overrides(_with_environment(load_file(path)), list(overrides))
    for key in raw:
        if key not in TOP_LEVEL:
            raise ConfigError(f"unknown key in {path.name} (known: {', '.join(sorted(TOP_LEVEL))})", str(key))
    name = raw.get("name") or path.stem
    if not isinstance(name, str):
        raise ConfigError("expected a string", "name")
    out_dir = Path(out or raw.get("out") or Path("runs") / name)
    seeds = raw.get("seeds") or []
    seeds = [seeds] if isinstance(seeds, str) else seeds
    if not isinstance(seeds, list) or not all(isinstance(s, str) for s in seeds):
        raise ConfigError("expected a path or a list of paths", "seeds")
    # seed files are relative to the config file, so a project directory can move as a whole
    seeds = [str((path.parent / s) if not Path(s).is_absolute() else Path(s)) for s in seeds]
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError("expected an integer", "seed")
    lang = raw.get("lang")
    if lang not in (None, "en", "zh"):
        raise ConfigError(f"expected en or zh, got {lang!r}", "lang")
    llm = build(LLMSection, raw.get("llm"), "llm")
    stages = {name: _build_stage(name, cls, raw.get(name), seed=seed, lang=lang)
              for name, cls in _section_classes().items()}
    pipeline = Pipeline(out=out_dir, lang=lang, seed=seed, seeds=seeds, llm=llm, stages=stages)
    _validate(pipeline)
    return pipeline


ENVIRONMENT = {"OPENAI_BASE_URL": "base_url", "OPENAI_API_KEY": "api_key", "SFTDATA_MODEL": "model"}


def _with_environment(raw: dict[str, Any]) -> dict[str, Any]:
    """Environment variables win over the config file (and ``--set`` over both)."""
    llm = raw.get("llm")
    if llm is not None and not isinstance(llm, dict):
        return raw  # reported by the section check
    llm = dict(llm or {})
    for variable, key in ENVIRONMENT.items():
        value = os.environ.get(variable)
        if value:
            llm[key] = value.replace(",", " ").split() if key == "base_url" else value
    if llm:
        raw["llm"] = llm
    return raw


def _build_stage(name: str, cls: type, data: Any, seed: int, lang: str | None) -> Any:
    if data is None and name in OFF_BY_DEFAULT:
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of settings, got {data!r}", name)
    data = dict(data)
    enabled = data.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"expected true or false, got {enabled!r}", f"{name}.enabled")
    for key in SET_BY_PIPELINE.get(name, ()):
        if key in data:
            raise ConfigError("is set by the pipeline (from the previous stage)", f"{name}.{key}")
    names = {f.name for f in dataclasses.fields(cls)}
    if "seed" in names:
        data.setdefault("seed", seed)
    if "lang" in names and lang is not None:
        data.setdefault("lang", lang)
    if name == "finetune":
        data.update({"data": [], "out": ""})
    if name == "dpo":  # preference tuning on the pairs stage's export, on top of the finetune stage's adapter
        data.update({"data": [], "out": "", "method": "dpo"})
    section = build(cls, data, name)
    return section if enabled else None


def _validate(pipeline: Pipeline) -> None:
    """Run each library config's own checks, naming keys the config-file way."""
    checks = {"llm": pipeline.llm.to_llm_config().validate}
    checks.update((name, getattr(section, "validate", None)) for name, section in pipeline.stages.items())
    for name, check in checks.items():
        if check is None:
            continue
        try:
            check()
        except ConfigError as exc:
            option = (exc.option or "").lstrip("-").replace("-", "_")
            raise ConfigError(exc.message, f"{name}.{option}" if option else name) from None


# ---------------------------------------------------------------- running

@dataclass
class Context:
    pipeline: Pipeline
    progress: bool
    log: Callable[[str], None]
    outputs: dict[str, list[Path]] = field(default_factory=dict)  # data files each finished stage produced

    def dir(self, stage: str) -> Path:
        return self.pipeline.out / stage

    def seed_files(self) -> list[Path]:
        return [Path(p) for p in self.pipeline.seeds] or [_default_seeds(self.pipeline)]

    def latest_data(self) -> list[Path]:
        """The records the last data stage produced (the seeds when no stage ran before)."""
        for name in reversed(STAGE_ORDER):
            if name in self.outputs and name not in ("export", "finetune", "pairs", "dpo", "eval", "report"):
                return self.outputs[name]
        return self.seed_files()


def _default_seeds(pipeline: Pipeline) -> Path:
    from .core.paths import seeds_dir

    return seeds_dir() / f"{pipeline.lang or 'en'}.jsonl"


def stage_hash(name: str, section: Any, previous: str, pipeline: Pipeline) -> str:
    settings = {k: v for k, v in to_plain(section).items() if k not in NOT_HASHED} if section is not None else None
    llm = {k: v for k, v in to_plain(pipeline.llm).items() if k not in NOT_HASHED}
    payload = {"stage": name, "settings": settings, "previous": previous, "seeds": pipeline.seeds,
               "lang": pipeline.lang, "seed": pipeline.seed,
               "llm": llm if name in ("generate", "augment", "judge", "pairs") else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan(pipeline: Pipeline) -> list[dict[str, Any]]:
    """What a run would do now: for each stage, run / skip (finished, same settings) / off."""
    steps, previous, upstream_runs = [], "", False
    for name in STAGE_ORDER:
        section = pipeline.stages[name]
        digest = stage_hash(name, section, previous, pipeline)
        marker = _read_marker(pipeline.out / name)
        if section is None:
            action = "off"
        elif marker and marker.get("hash") == digest and marker.get("status") == "done":
            # finished, but its input is about to be rewritten by an earlier stage
            action = "re-run (an earlier stage runs)" if upstream_runs else "skip (finished, same settings)"
        elif marker and marker.get("hash") == digest:
            action = "resume"
        elif marker:
            action = "re-run (settings or input changed)"
        else:
            action = "run"
        upstream_runs = upstream_runs or not action.startswith(("skip", "off"))
        steps.append({"stage": name, "action": action, "hash": digest})
        previous = digest
    return steps


def _read_marker(directory: Path) -> dict[str, Any] | None:
    path = directory / "stage.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    except ValueError:
        return None


def _write_marker(directory: Path, data: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "stage.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    tmp.replace(directory / "stage.json")


def run_pipeline(pipeline: Pipeline, progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    from . import stages
    from .core.rundir import RunDir

    RunDir(pipeline.out).write_config(pipeline.public())
    ctx = Context(pipeline=pipeline, progress=progress, log=log)
    summary: dict[str, Any] = {"out": str(pipeline.out), "stages": {}}
    for step in plan(pipeline):
        name, directory = step["stage"], pipeline.out / step["stage"]
        section = pipeline.stages[name]
        if section is None:
            summary["stages"][name] = {"action": "off"}
            continue
        marker = _read_marker(directory)
        if step["action"].startswith("skip"):
            ctx.outputs[name] = [Path(p) for p in marker["outputs"]]
            summary["stages"][name] = {"action": "skipped", **marker.get("summary_short", {})}
            log(f"[{name}] finished before with the same settings; skipped")
            continue
        fresh = step["action"].startswith("re-run")
        if fresh:
            shutil.rmtree(directory)
        log(f"[{name}] {'re-running' if fresh else step['action']} -> {directory}")
        _write_marker(directory, {"hash": step["hash"], "status": "running"})
        started = time.perf_counter()
        outputs, result = getattr(stages, f"run_{name}")(ctx, section)
        ctx.outputs[name] = outputs
        short = stages.short_summary(name, result)
        _write_marker(directory, {"hash": step["hash"], "status": "done", "outputs": [str(p) for p in outputs],
                                  "seconds": round(time.perf_counter() - started, 1), "summary_short": short})
        summary["stages"][name] = {"action": "ran", **short}
    return summary
