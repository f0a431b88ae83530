"""Export: every format of the formats registry (core/formats.py), leak-free splits, dataset_info.json.

The formats, their field names and the prompt join live in ``core.formats`` (alpaca, sharegpt,
messages, prompt-completion): export writes each chosen one and never guesses at an unknown name.
The human / user turn and the prompt are the instruction, a blank line, then the input (when there
is one): the reverse of how the readers split it at the first blank line. So an instruction that
itself holds a blank line comes back with its second part in ``input`` (the prompt text is the
same; only alpaca keeps the two fields apart).

A record's own system prompt (``meta["system"]``, e.g. from an imported sharegpt file) wins over
``--system``, which fills in the rest. A format whose rows have no place for a system prompt
(prompt-completion) leaves it out, and the summary says so.

Splits are written only when they hold records: a split with ratio 0 (or too few records to get
one) has no file, no dataset_info.json entry and no card config, and a file left by an earlier export
is removed so the directory never mixes two runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core import formats as registry
from ..core.errors import ConfigError, DataError
from ..core.lock import DirLock
from ..core.records import Record, read_numbered_records, write_jsonl, write_text_atomic
from .card import record_system, write_card
from .config import parse_formats, parse_split
from .license import check_license
from .splits import SPLITS, assign_splits, group_key

DEFAULT_SPLIT = (0.9, 0.05, 0.05)


# ---------------------------------------------------------------- reading

def read_inputs(paths: Sequence[str | os.PathLike[str]]) -> list[Record]:
    """Read every input fully (any supported shape), checking each record can be exported.

    Errors name ``file:line``: a missing instruction or a non-string field (from the reader), and an
    empty output (an incomplete record: nothing to train on).
    """
    records: list[Record] = []
    for path in paths:
        for number, rec in read_numbered_records(path):
            problem = export_problem(rec)
            if problem:
                raise DataError(path, number, problem)
            records.append(rec)
    return records


def export_problem(rec: Record) -> str | None:
    if not rec.instruction.strip():
        return "field 'instruction' is empty"
    if not rec.output.strip():
        return "field 'output' is empty: export needs complete records (instruction and output)"
    return None


def with_languages(records: Sequence[Record]) -> tuple[list[Record], int]:
    """The records, each with a language: one that has none (seed files, imported datasets) gets the
    one detected from its instruction (then its whole text when that says nothing), so the split is
    stratified by language and the card's ``language:`` comes from the data. Returns (records, how
    many were detected)."""
    from ..text.lang import detect_lang

    out: list[Record] = []
    detected = 0
    for rec in records:
        if not rec.lang:
            lang = detect_lang(rec.instruction)
            if lang == "unknown":
                lang = detect_lang(f"{rec.instruction}\n{rec.input}\n{rec.output}")
            if lang != "unknown":
                rec = dataclasses.replace(rec, lang=lang)
                detected += 1
        out.append(rec)
    return out, detected


# ---------------------------------------------------------------- formats

def prompt_text(rec: Record) -> str:
    return registry.prompt_text(rec.instruction, rec.input)


def to_row(rec: Record, fmt: str, system: str, with_system: bool) -> dict[str, Any]:
    """One record in one format. ``with_system``: the format's rows carry a system column."""
    return registry.get(fmt).write(rec, system, with_system)


def columns_of(fmt: str, with_system: bool) -> list[str]:
    """The top-level columns a format's files have (what ``datasets`` shows): ``to_row``'s keys."""
    return registry.get(fmt).columns(with_system)


# ---------------------------------------------------------------- writing

def _dataset_name(out_dir: Path, name: str | None) -> str:
    raw = name or out_dir.resolve().name or "sftdata"
    cleaned = re.sub(r"[^0-9A-Za-z_.-]+", "_", raw).strip("_")
    return cleaned or "sftdata"


def dataset_info_entry(fmt: str, file_name: str, with_system: bool) -> dict[str, Any]:
    """LLaMA-Factory's dataset_info.json entry of ``fmt`` (the registry's)."""
    return registry.get(fmt).dataset_info_entry(file_name, with_system)


def _write_dataset_info(out_dir: Path, name: str, entries: dict[str, Any]) -> None:
    """Merge into an existing dataset_info.json: other datasets' entries stay, ours are replaced."""
    path = out_dir / "dataset_info.json"
    info: dict[str, Any] = {}
    if path.exists():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise DataError(path, None, "existing dataset_info.json is not valid JSON; move it away") from None
        if not isinstance(info, dict):
            raise DataError(path, None, "existing dataset_info.json is not a JSON object; move it away")
    prefix = f"{name}_"
    info = {k: v for k, v in info.items() if not (k.startswith(prefix) and isinstance(v, dict)
                                                  and v.get("file_name", "").split("/")[0] in registry.FORMATS)}
    info.update(entries)
    write_text_atomic(path, json.dumps(info, ensure_ascii=False, indent=2) + "\n")


def _write_splits(out_dir: Path, fmt: str, rows_by_split: dict[str, list[dict]]) -> dict[str, str]:
    """``<fmt>/<split>.jsonl`` for each split with rows; a file of an empty split is removed."""
    files: dict[str, str] = {}
    for split_name in SPLITS:
        path = out_dir / fmt / f"{split_name}.jsonl"
        if split_name in rows_by_split:
            write_jsonl(path, rows_by_split[split_name])
            files[split_name] = f"{fmt}/{split_name}.jsonl"
        else:
            path.unlink(missing_ok=True)
    return files


def _write_hf(out_dir: Path, fmt: str, rows_by_split: dict[str, list[dict]]) -> dict[str, str]:
    """A DatasetDict saved with save_to_disk (hf/<fmt>) and one Parquet file per split (export has
    removed those of an earlier export)."""
    from datasets import Dataset, DatasetDict  # heavy import, only with --hf
    from datasets.utils import logging as hf_logging

    disk_dir = out_dir / "hf" / fmt
    parquet_dir = out_dir / "parquet" / fmt
    parquet_dir.mkdir(parents=True)
    # datasets draws a progress bar per split and file: noise on our stderr for a few seconds' work
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        dataset = DatasetDict({split: Dataset.from_list(rows) for split, rows in rows_by_split.items()})
        dataset.save_to_disk(str(disk_dir))
        for split, part in dataset.items():
            part.to_parquet(str(parquet_dir / f"{split}.parquet"))
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
    return {"save_to_disk": str(disk_dir), "parquet": str(parquet_dir)}


def export(records: Sequence[Record], out_dir: str | os.PathLike[str], formats: Sequence[str] = ("alpaca",),
           *, split: Sequence[float] = DEFAULT_SPLIT, seed: int = 0, system: str | None = None,
           hf: bool = False, license: str | None = None, license_name: str | None = None,
           name: str | None = None,
           sources: Sequence[str | os.PathLike[str]] = (), card: bool = True) -> dict[str, Any]:
    """Write ``records`` in each format with train/validation/test splits, dataset_info.json and README.md.

    ``sources`` are the input files: when they sit in a run directory, its config.json, stats.json and
    rejected.jsonl describe in the card how the data was made. Returns a summary (counts, paths).
    """
    formats = parse_formats(formats)
    ratios = parse_split(split)
    check_license(license, license_name)
    if not records:
        raise ConfigError("no records to export")
    for number, rec in enumerate(records, start=1):
        problem = export_problem(rec)
        if problem:
            raise DataError("records", number, problem)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out}: {exc.strerror}", "--out") from None
    with DirLock(out):  # one writer per directory
        return _export_into(out, records, formats, ratios, seed=seed, system=system, hf=hf, license=license,
                            license_name=license_name,
                            name=_dataset_name(out, name), sources=sources, card=card)


def _export_into(out: Path, records: Sequence[Record], formats: list[str], ratios: Sequence[float], *, seed: int,
                 system: str | None, hf: bool, license: str | None, license_name: str | None, name: str,
                 sources: Sequence[str | os.PathLike[str]], card: bool) -> dict[str, Any]:
    records, detected = with_languages(records)
    split_info: dict[str, Any] = {}
    split_of = assign_splits(records, ratios, seed, info=split_info)
    by_split = {s: [r for r, n in zip(records, split_of) if n == s] for s in SPLITS}
    present = [s for s in SPLITS if by_split[s]]
    systems = [record_system(r, system) for r in records]
    with_system = any(systems)

    entries: dict[str, Any] = {}
    files: dict[str, dict[str, str]] = {}
    hf_paths: dict[str, dict[str, str]] = {}
    for fmt in formats:
        rows_by_split = {s: [to_row(r, fmt, record_system(r, system), with_system) for r in by_split[s]]
                         for s in present}
        files[fmt] = _write_splits(out, fmt, rows_by_split)
        for split_name, rel in files[fmt].items():
            if registry.get(fmt).dataset_info:  # a format LLaMA-Factory cannot read has no entry
                entries[f"{name}_{fmt.replace('-', '_')}_{split_name}"] = dataset_info_entry(fmt, rel, with_system)
        # the DatasetDict and Parquet files of an earlier export with --hf would no longer match the JSONL
        for stale in (out / "hf" / fmt, out / "parquet" / fmt):
            if stale.is_dir():
                shutil.rmtree(stale)
        if hf:
            hf_paths[fmt] = _write_hf(out, fmt, rows_by_split)
    _write_dataset_info(out, name, entries)

    summary: dict[str, Any] = {
        "out": str(out), "name": name, "records": len(records), "formats": formats,
        "splits": {s: len(by_split[s]) for s in SPLITS},
        "instructions": {s: len({group_key(r.instruction) for r in by_split[s]}) for s in SPLITS},
        "ratios": dict(zip(SPLITS, ratios)), "seed": seed, "split_groups": split_info,
        "omitted_splits": [s for s in SPLITS if s not in present],
        "files": files, "dataset_info": str(out / "dataset_info.json"),
        "columns": {fmt: columns_of(fmt, with_system) for fmt in formats},
        "system_prompts": sum(1 for s in systems if s), "languages_detected": detected,
    }
    no_system = [fmt for fmt in formats if not registry.get(fmt).keeps_system()] if with_system else []
    if no_system:
        summary["warnings"] = [f"{fmt} has no system field: system prompts are left out of it" for fmt in no_system]
    if hf:
        summary["hf"] = hf_paths
    if card:
        summary["card"] = str(write_card(out, records, by_split, summary, license=license,
                                         license_name=license_name,
                                         sources=sources, system=system, with_system=with_system))
    return summary
