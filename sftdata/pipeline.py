"""``sftdata run``: the whole pipeline from one config, in one run directory, resumable stage by stage.

Stages run in order, each in its own subdirectory of the run directory. Each stage's identity is a
hash of its resolved settings and of the stage before it, stored in ``<stage>/stage.json``. On a
rerun, a stage whose hash matches and which finished is skipped; the first stage whose settings
changed (or which never finished) runs again, and so does every stage after it, since their hashes
chain. A stage interrupted mid-way resumes itself where it can (generate, augment).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import registry
from .core import settings
from .core.config import apply_overrides, build, load_file
from .core.errors import ConfigError
from .core.stage import StageResult, StageSpec
from .llm.config import LLMConfig

# the keys of a config besides the llm section and one section per stage
GLOBAL_KEYS = {
    "name": ("", "Run name; the run directory defaults to runs/<name> (default: the config file's name)."),
    "out": ("", "Run directory (the --out option wins); unlike the input paths, relative to the current "
                "directory."),
    "lang": ("", "en or zh: prompts, filters and seeds (default: the seeds' language)."),
    "seed": ("0", "Seed of every random choice and request of every stage."),
    "seeds": ("[]", "Seed task files (default: the packaged seeds/<lang>.jsonl)."),
    "progress": ("", "Accepted and ignored (progress bars: the --no-progress option)."),
}


@dataclass
class Pipeline:
    """A resolved config: global settings, the LLM, and each stage's section (None when switched off)."""

    out: Path
    lang: str | None
    seed: int
    seeds: list[str]
    llm: LLMConfig
    stages: dict[str, Any]

    def public(self) -> dict[str, Any]:
        data = {"out": str(self.out), "lang": self.lang, "seed": self.seed, "seeds": self.seeds,
                "llm": settings.section(self.llm),
                "stages": {k: settings.section(v) if v is not None else None for k, v in self.stages.items()}}
        data["llm"].pop("api_key", None)
        return data


def top_level_keys() -> set[str]:
    return {*GLOBAL_KEYS, "llm", *registry.names()}


# How every key naming a file or directory (seeds, judge.gold, select.feedback, a local llm.model...) is read
PATHS_NOTE = ("Paths (seeds, judge.gold, select.feedback, ...) in a config file are relative to its "
              "directory; given by --set or the environment, to the current directory.")


def load_pipeline(path: str | Path, overrides: list[str] = (), out: str | None = None) -> Pipeline:
    path = Path(path)
    raw = apply_overrides(_with_environment(load_file(path)), list(overrides))
    not_from_file = _keys_set_outside(overrides)
    known = top_level_keys()
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown key in {path.name} (known: {', '.join(sorted(known))})", str(key))
    name = raw.get("name") or path.stem
    if not isinstance(name, str):
        raise ConfigError("expected a string", "name")
    out_dir = Path(out or raw.get("out") or Path("runs") / name)
    seeds = raw.get("seeds") or []
    seeds = [seeds] if isinstance(seeds, str) else seeds
    if not isinstance(seeds, list) or not all(isinstance(s, str) for s in seeds):
        raise ConfigError("expected a path or a list of paths", "seeds")
    seeds = [_config_path(s, "seeds", path, "seeds" not in not_from_file) for s in seeds]
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError("expected an integer", "seed")
    lang = raw.get("lang")
    if lang not in (None, "en", "zh"):
        raise ConfigError(f"expected en or zh, got {lang!r}", "lang")
    llm = build(LLMConfig, raw.get("llm"), "llm")
    stages = {spec.name: _build_stage(spec, raw.get(spec.name), seed=seed, lang=lang) for spec in registry.specs()}
    pipeline = Pipeline(out=out_dir, lang=lang, seed=seed, seeds=seeds, llm=llm, stages=stages)
    for name, section in [("llm", llm), *stages.items()]:
        if section is not None:
            _resolve_paths(section, name, path, not_from_file)
    _validate(pipeline)
    return pipeline


def _keys_set_outside(overrides: list[str]) -> set[str]:
    """Dotted keys (or whole sections) given by ``--set`` or the environment rather than the file."""
    keys = {item.partition("=")[0].strip() for item in overrides}
    keys |= {f"llm.{key}" for variable, key in ENVIRONMENT.items() if os.environ.get(variable)}
    return {part for key in keys for part in _prefixes(key)}


def _prefixes(key: str) -> list[str]:
    """``a.b.c`` -> ``a.b.c``, ``a.b``, ``a``: any of them being set replaces the key."""
    parts = key.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _resolve_paths(section: Any, name: str, config: Path, not_from_file: set[str]) -> None:
    """Rewrite the section's path settings so they hold from any current directory; stop on a missing one."""
    for f in settings.path_fields(section):
        value = getattr(section, f.name)
        if not value:
            continue
        key = f"{name}.{settings.key_of(f)}"
        found = [_config_path(v, key, config, key not in not_from_file, f.metadata.get("must_exist", True))
                 for v in ([value] if isinstance(value, str) else value)]
        setattr(section, f.name, found[0] if isinstance(value, str) else type(value)(found))


def _config_path(value: str, key: str, config: Path, from_file: bool, must_exist: bool = True) -> str:
    """``value`` read the way a config's paths are (:data:`PATHS_NOTE`): relative to the config file's
    directory, so a project directory works from anywhere and can move as a whole. Missing: an error
    naming the file and key, or (``must_exist=False``: a model name or a directory) ``value`` as given."""
    given = Path(value).expanduser()
    resolved = given if given.is_absolute() or not from_file else config.parent / given
    if resolved.exists():
        return str(resolved)
    if not must_exist:
        return value
    origin = (f"a relative path in {config} is read from its directory, {config.parent}" if from_file
              else "given by --set or the environment: read from the current directory")
    raise ConfigError(f"no such file or directory: {resolved} ({origin})", key)


ENVIRONMENT = settings.environment(LLMConfig)  # OPENAI_BASE_URL, OPENAI_API_KEY, SFTDATA_MODEL


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


def _build_stage(spec: StageSpec, data: Any, seed: int, lang: str | None) -> Any:
    if data is None and not spec.enabled_by_default:  # e.g. judge: on only when the config names it
        return None
    name = spec.name
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of settings, got {data!r}", name)
    data = dict(data)
    enabled = data.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"expected true or false, got {enabled!r}", f"{name}.enabled")
    for key in settings.by_pipeline(spec.config):
        if key in data:
            raise ConfigError("is set by the pipeline (from the previous stage)", f"{name}.{key}")
    keys = {settings.key_of(f) for f in settings.config_fields(spec.config)}
    if "seed" in keys:
        data.setdefault("seed", seed)
    if "lang" in keys and lang is not None:
        data.setdefault("lang", lang)
    section = build(spec.config, data, name)
    return section if enabled else None


def _validate(pipeline: Pipeline) -> None:
    """Run each library config's own checks, naming keys the config-file way."""
    checks = [("llm", pipeline.llm)] + list(pipeline.stages.items())
    for name, config in checks:
        check = getattr(config, "validate", None)
        if check is None:
            continue
        try:
            check()
        except ConfigError as exc:
            raise ConfigError(exc.message, f"{name}.{_key_of_option(config, exc.option)}".rstrip(".")) from None


def _key_of_option(config: Any, option: str | None) -> str:
    """The config key of a command-line option a check named (``--format`` -> ``formats``)."""
    for f in settings.fields(config):
        if settings.option_name(f) == option:
            return settings.key_of(f)
    return (option or "").lstrip("-").replace("-", "_")


def list_keys() -> list[tuple[str, str, str]]:
    """``(key, default, help)`` for every key a ``sftdata run`` config may hold."""
    rows = [(key, default, text) for key, (default, text) in GLOBAL_KEYS.items()]
    rows += settings.describe(LLMConfig, "llm")
    for spec in registry.specs():
        rows.append((f"{spec.name}.enabled", str(spec.enabled_by_default).lower(), f"Run the {spec.name} stage ({spec.help})."))
        rows += settings.describe(spec.config, spec.name)
    return rows


# ---------------------------------------------------------------- running

@dataclass
class Context:
    """What a stage's run function sees of the run (:class:`sftdata.core.stage.StageContext`)."""

    pipeline: Pipeline
    progress: bool
    log: Callable[[str], None]
    outputs: dict[str, list[Path]] = field(default_factory=dict)  # what each finished stage produced
    stage: str = ""  # the stage running now

    @property
    def out(self) -> Path:
        return self.pipeline.out / self.stage

    @property
    def run_dir(self) -> Path:
        return self.pipeline.out

    @property
    def seed(self) -> int:
        return self.pipeline.seed

    @property
    def lang(self) -> str | None:
        return self.pipeline.lang

    @property
    def seeds(self) -> list[str]:
        return list(self.pipeline.seeds)

    def llm_config(self) -> LLMConfig:
        return self.pipeline.llm

    def seed_files(self) -> list[Path]:
        return [Path(p) for p in self.pipeline.seeds] or [_default_seeds(self.pipeline)]

    def data(self) -> list[Path]:
        """The records the last data stage produced (the seeds when no stage ran before)."""
        for name in reversed(registry.data_stages()):
            if name in self.outputs:
                return self.outputs[name]
        return self.seed_files()

    def output_of(self, stage: str) -> list[Path] | None:
        return self.outputs.get(stage)

    def config_of(self, stage: str) -> Any:
        return self.pipeline.stages.get(stage)


def _default_seeds(pipeline: Pipeline) -> Path:
    from .core.paths import seeds_dir

    return seeds_dir() / f"{pipeline.lang or 'en'}.jsonl"


def stage_hash(spec: StageSpec, section: Any, previous: str, pipeline: Pipeline) -> str:
    """The stage's identity: its hashed settings, the stage before it, the run's inputs (and the LLM's
    hashed settings for a stage that calls it)."""
    payload = {"stage": spec.name, "settings": settings.hashed(section) if section is not None else None,
               "previous": previous, "seeds": pipeline.seeds, "lang": pipeline.lang, "seed": pipeline.seed,
               "llm": settings.hashed(pipeline.llm) if spec.uses_llm else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan(pipeline: Pipeline) -> list[dict[str, Any]]:
    """What a run would do now: for each stage, run / skip (finished, same settings) / off."""
    steps, previous, upstream_runs = [], "", False
    for spec in registry.specs():
        name = spec.name
        section = pipeline.stages.get(name)
        digest = stage_hash(spec, section, previous, pipeline)
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
    from .core.rundir import RunDir

    rundir = RunDir(pipeline.out)  # locked: a second `sftdata run` on this directory stops at once
    try:
        rundir.write_config(pipeline.public())
        return _run_stages(pipeline, progress, log)
    finally:
        rundir.close()


def _run_stages(pipeline: Pipeline, progress: bool, log: Callable[[str], None]) -> dict[str, Any]:

    ctx = Context(pipeline=pipeline, progress=progress, log=log)
    summary: dict[str, Any] = {"out": str(pipeline.out), "stages": {}}
    specs = {spec.name: spec for spec in registry.specs()}
    for step in plan(pipeline):
        name, directory = step["stage"], pipeline.out / step["stage"]
        section = pipeline.stages.get(name)
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
        ctx.stage = name
        result: StageResult = specs[name].run(ctx, section)
        ctx.outputs[name] = result.outputs
        short = result.short(specs[name].summary_keys)
        _write_marker(directory, {"hash": step["hash"], "status": "done",
                                  "outputs": [str(p) for p in result.outputs],
                                  "seconds": round(time.perf_counter() - started, 1), "summary_short": short})
        summary["stages"][name] = {"action": "ran", **short}
    return summary
