"""The clean stage: normalize text, remove noise records, optionally mask PII.

Rules, each named, switchable (``--no-rule NAME``, or ``normalize`` for the five normalization
rules at once) and counted:

    normalization (rewrite the text, never remove a record)
      control-chars       control characters, zero-width spaces, BOMs; CRLF -> LF
      html                HTML tags and entities (not in tasks about code or markup)
      nfkc                Unicode NFKC where it does not change meaning
      whitespace          runs of spaces, trailing spaces, blank lines, trim
      code-fence          unwrap a reply that is one plain fenced block (not in code tasks)
    removal (the record goes to rejected.jsonl with the rule's name)
      empty               instruction or output empty after normalization
      refusal             refusals and AI disclaimers (English, Chinese)
      repeats-instruction the reply is the instruction again
      repetition          degenerate n-gram / line repetition
      truncated           cut off by the length limit (meta finish_reason, or heuristics)
      length-outlier      robust z-score of log output length above --outlier-z (long ones;
                          short ones too with --outlier-short)
    optional
      pii                 --mask-pii: [EMAIL], [PHONE], [ID_NUMBER] placeholders

Records are checked in input order by the per-record rules; length outliers are scored over the
records that survive them (a batch of refusals must not shift the median), and PII is masked in the
survivors. A rejected record is written as it was read, so nothing is lost.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.records import Record, read_all, rejected, write_jsonl
from ..core.rundir import RunDir
from ..core.stats import is_cjk_lang
from . import rules, text
from .config import GROUPS, NORMALIZE_RULES, OPTIONAL_RULES, REMOVE_RULES, RULES, CleanConfig  # noqa: F401

STAGE = "clean"

# checked in this order, the first that fires names the removal: a loop that ran into the length limit
# is reported as repetition, the cause, rather than as truncated
_DETECTORS = {"refusal": rules.refusal, "repeats-instruction": rules.repeats_instruction,
              "repetition": rules.repetition, "truncated": rules.truncated}


@dataclass
class CleanStats:
    records: int = 0
    kept: int = 0
    removed: Counter = field(default_factory=Counter)      # rule -> records removed
    normalized: Counter = field(default_factory=Counter)   # rule -> records it changed
    pii: Counter = field(default_factory=Counter)          # placeholder type -> replacements
    pii_records: int = 0
    outlier_groups: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "kept": self.kept, "removed_total": sum(self.removed.values()),
                "removed": dict(sorted(self.removed.items())),
                "normalized": dict(sorted(self.normalized.items())),
                "pii_masked": dict(sorted(self.pii.items())), "pii_records": self.pii_records,
                "outlier_groups": self.outlier_groups}


# ---------------------------------------------------------------- normalization

def _normalize_field(value: str, config: CleanConfig, code: bool, chinese: bool, changed: set[str]) -> str:
    spacing_is_code = code or text.looks_like_code(value)
    steps = (("control-chars", text.strip_control), ("html", None if code else text.strip_html),
             ("nfkc", lambda v: text.nfkc(v, chinese)),
             ("whitespace", lambda v: text.collapse_whitespace(v, spacing_is_code)))
    for name, func in steps:
        if func is None or not config.on(name):
            continue
        new = func(value)
        if new != value:
            changed.add(name)
            value = new
    return value


def _noted(meta: dict[str, Any], rules_applied: set[str]) -> dict[str, Any]:
    """A copy of ``meta`` whose ``cleaned`` list names the rules that changed the record."""
    before = meta.get("cleaned")
    before = set(before) if isinstance(before, list) else set()
    return {**meta, "cleaned": sorted(before | rules_applied)}


def normalize_record(rec: Record, config: CleanConfig, stats: CleanStats | None = None) -> Record:
    """The record with every enabled normalization rule applied; ``meta["cleaned"]`` lists them."""
    code = text.is_code_task(rec.instruction, rec.input)
    # a Chinese record keeps full-width punctuation in every field, "2，6，12，？" included
    chinese = is_cjk_lang(rec.lang) or any(text.has_cjk(v) for v in (rec.instruction, rec.input, rec.output))
    changed: set[str] = set()
    instruction = _normalize_field(rec.instruction, config, code, chinese, changed)
    input_text = _normalize_field(rec.input, config, code, chinese, changed)
    output = _normalize_field(rec.output, config, code, chinese, changed)
    if config.on("code-fence"):
        unwrapped = text.unwrap_code_fence(output, code)
        if unwrapped != output:
            changed.add("code-fence")
            output = text.collapse_whitespace(unwrapped) if config.on("whitespace") else unwrapped
    if not changed:
        return rec
    if stats is not None:
        stats.normalized.update(changed)
    return replace(rec, instruction=instruction, input=input_text, output=output, meta=_noted(rec.meta, changed))


def _mask(rec: Record, stats: CleanStats) -> Record:
    counts: Counter = Counter()
    values = []
    for value in (rec.instruction, rec.input, rec.output):
        masked, found = text.mask_pii(value)
        counts.update(found)
        values.append(masked)
    if not counts:
        return rec
    stats.pii.update(counts)
    stats.pii_records += 1
    return replace(rec, instruction=values[0], input=values[1], output=values[2], meta=_noted(rec.meta, {"pii"}))


# ---------------------------------------------------------------- removal

def removal(rec: Record, config: CleanConfig) -> tuple[str, dict[str, Any]] | None:
    """The first per-record removal rule that fires on a normalized record, with its detail."""
    if config.on("empty") and not (rec.instruction.strip() and rec.output.strip()):
        return "empty", {"field": "instruction" if not rec.instruction.strip() else "output"}
    for name, detect in _DETECTORS.items():
        if config.on(name):
            detail = detect(rec)
            if detail is not None:
                return name, detail
    return None


def clean_records(records: Iterable[Record], config: CleanConfig, stats: CleanStats | None = None
                  ) -> Iterator[tuple[Record, str | None, dict[str, Any]]]:
    """Yield ``(record, rule, detail)`` in input order: the cleaned record with rule None when kept,
    the record as given with the rule's name and detail when removed. Holds the batch in memory:
    length outliers need every surviving length before any can be judged."""
    stats = stats if stats is not None else CleanStats()
    originals = list(records)
    cleaned: list[Record] = []
    verdicts: list[tuple[str, dict[str, Any]] | None] = []
    for rec in originals:
        new = normalize_record(rec, config, stats)
        cleaned.append(new)
        verdicts.append(removal(new, config))
    stats.records += len(originals)
    if config.on("length-outlier"):
        survivors = [i for i, v in enumerate(verdicts) if v is None]
        flagged, stats.outlier_groups = rules.length_outliers(
            [cleaned[i] for i in survivors], config.outlier_z, config.outlier_min_group, config.outlier_short)
        for position, detail in flagged.items():
            verdicts[survivors[position]] = ("length-outlier", detail)
    for original, new, verdict in zip(originals, cleaned, verdicts):
        if verdict is not None:
            stats.removed[verdict[0]] += 1
            yield original, verdict[0], verdict[1]
            continue
        stats.kept += 1
        yield (_mask(new, stats) if config.on("pii") else new), None, {}


# ---------------------------------------------------------------- the stage

def _check_paths(inputs: Sequence[str | os.PathLike[str]], out: Path) -> None:
    targets = {(out / name).resolve() for name in ("accepted.jsonl", "rejected.jsonl")}
    for path in inputs:
        if Path(path).resolve() in targets:
            raise ConfigError(f"input {path} would be overwritten by the output; choose another directory", "--out")


def run_clean(inputs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
              config: CleanConfig | None = None, progress: bool = True) -> dict[str, Any]:
    """Clean the records of ``inputs`` into ``out_dir``: accepted.jsonl, rejected.jsonl, config.json,
    stats.json (rewritten whole: the stage is deterministic and needs no resume). Returns the summary."""
    config = config or CleanConfig()
    out = Path(out_dir)
    _check_paths(inputs, out)
    records = read_all(inputs)  # every bad line fails before anything is written
    rundir = RunDir(out)
    stats = CleanStats()
    accepted: list[Record] = []
    removed: list[dict] = []
    results = clean_records(records, config, stats)
    if progress:
        from tqdm import tqdm
        results = tqdm(results, total=len(records), desc="clean", unit="rec", disable=None)
    for rec, rule, detail in results:
        if rule is None:
            accepted.append(rec)
        else:
            removed.append(rejected(rec, STAGE, rule, detail))
    write_jsonl(rundir.file("accepted.jsonl"), accepted)
    write_jsonl(rundir.file("rejected.jsonl"), removed)
    settings = {"stage": STAGE, "inputs": [str(p) for p in inputs], "rules": config.enabled_rules(),
                "disabled": sorted(config.disabled), "mask_pii": config.mask_pii,
                "outlier_z": config.outlier_z, "outlier_min_group": config.outlier_min_group,
                "outlier_short": config.outlier_short}
    rundir.write_config(settings)
    summary = {"out": str(out), **stats.to_dict(), "rules": config.enabled_rules(),
               "outlier_z": config.outlier_z}
    rundir.write_json("stats.json", {"stage": STAGE, **stats.to_dict()})
    return summary
