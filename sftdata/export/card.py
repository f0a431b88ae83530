"""The dataset card (README.md) export writes: the YAML header the Hub reads, provenance, statistics, examples.

Provenance comes from the run directory the input files live in, when they do: its config.json
(model, prompts, seeds, filters and thresholds), stats.json (counts) and rejected.jsonl (counts per
stage and reason). Stages write those files with their own keys, so the card looks the common ones
up by name and shows both files in full below, folded.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .. import registry
from ..core import formats
from ..core.records import Record, write_text_atomic
from ..core.rundir import strip_secrets
from ..core.stats import table1
from ..text.prompt import PROMPT_JOIN, TRAINER_JOINS
from .license import check_license
from .splits import describe

EXAMPLE_COUNT = 3
EXAMPLE_CHARS = 400
_SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                    (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
_LOOKUPS = {  # card line -> keys looked up (first found) in config.json, then stats.json
    "model": ("model", "model_name"),
    "backend": ("backend",),
    "method": ("method", "mode", "generator"),
    "prompts": ("prompts", "prompt", "prompt_files", "templates", "prompt_lang"),
    "seed tasks": ("seed_tasks", "num_seeds", "seeds", "seed_file", "seed_files"),
    "filters": ("filters", "filter"),
    "clean rules": ("rules",),
}


def size_category(count: int) -> str:
    for limit, label in _SIZE_CATEGORIES:
        if count < limit:
            return label
    return "n>100M"


# ---------------------------------------------------------------- provenance

def _find(obj: Any, names: Sequence[str], depth: int = 0) -> Any:
    """The first value under any of ``names``, searching nested objects breadth-first by level."""
    if not isinstance(obj, dict) or depth > 4:
        return None
    for name in names:
        if obj.get(name) not in (None, "", [], {}):
            return obj[name]
    for value in obj.values():
        found = _find(value, names, depth + 1)
        if found is not None:
            return found
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _count(row: dict) -> int:
    count = row.get("count", 1)
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1


def reject_counts(path: Path) -> Counter:
    """(stage, reason) -> count over a rejected.jsonl; unreadable lines are counted as such."""
    counts: Counter = Counter()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                # a rejection repeated in one run is written once with its count (generate's rejected.jsonl)
                counts[(str(row.get("stage", "?")), str(row.get("reason", "?")))] += _count(row)
            except (ValueError, AttributeError):
                counts[("?", "unreadable line")] += 1
    return counts


def run_dirs(sources: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, list[Path]]]:
    """The run directories the inputs live in, each with the directories to read, in pipeline order.

    Flat: the input's own directory. Staged (``runs/x/clean/accepted.jsonl``, as ``sftdata run``
    lays it out): the run root and each of its stage directories, so the card covers every stage.
    """
    stage_names = registry.data_stages()  # the stage directories of a staged run that hold records
    found: list[tuple[Path, list[Path]]] = []
    for source in sources:
        parent = Path(source).resolve().parent
        root = parent.parent if parent.name in stage_names and _has_markers(parent.parent) else parent
        if any(root == r for r, _ in found) or not _has_markers(root):
            continue
        stages = [root / s for s in stage_names if (root / s).is_dir() and _has_markers(root / s)]
        found.append((root, [root] + stages))
    return found


def _has_markers(directory: Path) -> bool:
    return any((directory / m).is_file() for m in ("config.json", "stats.json", "rejected.jsonl")) or any(
        (directory / s).is_dir() and any((directory / s / m).is_file() for m in ("config.json", "stats.json"))
        for s in registry.data_stages())


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = text.replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lookups(configs: list[Any], stats: list[Any]) -> list[str]:
    lines = []
    for label, keys in _LOOKUPS.items():
        # stats.json holds counts ("seed_tasks": 12), config.json settings ("seeds": "seeds/en.jsonl")
        in_stats = next((v for v in (_find(d, keys) for d in stats) if v is not None), None)
        in_config = next((v for v in (_find(d, keys) for d in configs) if v is not None), None)
        found = [v for v in (in_stats, in_config) if v is not None]
        if found:
            extra = f" ({_short(found[1])})" if len(found) == 2 and found[1] != found[0] else ""
            lines.append(f"- **{label}**: {_short(found[0])}{extra}")
    return lines


def _run_section(root: Path, dirs: list[Path]) -> list[str]:
    def name(directory: Path) -> str:
        return "run" if directory == root else directory.name

    configs = {name(d): strip_secrets(_read_json(d / "config.json") or {}) for d in dirs}
    stats = {name(d): strip_secrets(_read_json(d / "stats.json") or {}) for d in dirs}
    lines = [f"### Run `{root.name}`", ""] + _lookups(list(configs.values()), list(stats.values()))
    rows = [(stage, k, v) for stage, data in stats.items() if isinstance(data, dict) for k, v in data.items()
            if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    if rows:
        lines += ["", "| stage | statistic | value |", "|---|---|---|"]
        lines += [f"| {stage} | {_short(k, 60)} | {_short(v, 80)} |" for stage, k, v in rows]
    counts: Counter = Counter()
    for directory in dirs:
        if (directory / "rejected.jsonl").is_file():
            counts.update(reject_counts(directory / "rejected.jsonl"))
    if counts:
        lines += ["", f"Rejected records ({sum(counts.values())}), per stage and reason:", "",
                  "| stage | reason | records |", "|---|---|---|"]
        lines += [f"| {_short(stage, 40)} | {_short(reason, 60)} | {n} |"
                  for (stage, reason), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    for title, files in (("config.json", configs), ("stats.json", stats)):
        for stage, data in files.items():
            if data:
                where = title if stage == "run" else f"{stage}/{title}"
                lines += ["", f"<details><summary>{where}</summary>", "", "```json",
                          json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True), "```", "", "</details>"]
    return lines + [""]


def provenance_section(sources: Sequence[str | os.PathLike[str]]) -> list[str]:
    lines = ["## How it was generated", ""]
    runs = run_dirs(sources)
    if not runs:
        lines += ["The input files were not in an sftdata run directory (no config.json, stats.json or",
                  "rejected.jsonl beside them), so how they were made is not recorded here. Inputs: "
                  + ", ".join(f"`{Path(s).name}`" for s in sources) + ".", ""]
        return lines
    for root, dirs in runs:
        lines += _run_section(root, dirs)
    return lines


# ---------------------------------------------------------------- the card

def _header(name: str, records: Sequence[Record], summary: dict[str, Any], license: str,
            license_name: str | None) -> str:
    configs = []
    for index, fmt in enumerate(summary["formats"]):
        config: dict[str, Any] = {"config_name": fmt,
                                  "data_files": [{"split": s, "path": p} for s, p in summary["files"][fmt].items()]}
        if index == 0:
            config["default"] = True
        configs.append(config)
    languages = sorted({(r.lang or "").split("-")[0].lower() for r in records} - {""})
    header: dict[str, Any] = {"pretty_name": name, "configs": configs}
    if languages:
        header["language"] = languages
    header["license"] = license
    if license_name:
        header["license_name"] = license_name
    header.update({"task_categories": ["text-generation"],
                   "size_categories": [size_category(len(records))],
                   "tags": ["sft", "instruction-tuning", "sftdata"]})
    return yaml.safe_dump(header, sort_keys=False, allow_unicode=True)


def _truncate(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + " …"


def record_system(rec: Record, default: str | None) -> str:
    """The system prompt a record is exported with: its own (``meta["system"]``), else ``default``."""
    own = rec.meta.get("system") if isinstance(rec.meta, dict) else None
    return own if isinstance(own, str) and own else (default or "")


def _examples(train: Sequence[Record], system: str | None, with_system: bool) -> list[str]:
    """The first train record of each language, then the next ones, up to EXAMPLE_COUNT."""
    chosen: list[Record] = []
    for lang in sorted({r.lang or "" for r in train}):
        chosen += [r for r in train if (r.lang or "") == lang][:1]
    chosen += [r for r in train if all(r is not c for c in chosen)]
    lines: list[str] = []
    for rec in chosen[:EXAMPLE_COUNT]:
        row = {"instruction": _truncate(rec.instruction), "input": _truncate(rec.input),
               "output": _truncate(rec.output)}
        if with_system:
            row["system"] = _truncate(record_system(rec, system))
        lines += ["```json", json.dumps(row, ensure_ascii=False, indent=2), "```", ""]
    return lines


def _usage(name: str, summary: dict[str, Any]) -> list[str]:
    first = summary["formats"][0]
    files = summary["files"][first]
    data_files = ", ".join(f'"{s}": "{p}"' for s, p in files.items())
    key = f"{name}_{first.replace('-', '_')}_train"
    return [
        "## Using it", "",
        "With the `datasets` library (from this directory):", "",
        "```python", "from datasets import load_dataset",
        f'ds = load_dataset("json", data_files={{{data_files}}})', "```", "",
        "With LLaMA-Factory: `dataset_info.json` here has one entry per format and split; point",
        f"`dataset_dir` at this directory and use e.g. `dataset: {key}`.", "",
        *usage_lines(), "",
    ]


def usage_lines(width: int = 95) -> list[str]:
    """What the card says about the trainers that read each format, from the formats registry: the
    tools whose own format a file is ("With TRL's `SFTTrainer`: the `messages` files are its
    conversational format ..."), then the tools that read several ("axolotl reads `alpaca` (...)")."""
    tools: dict[str, list[tuple[str, str]]] = {}
    for fmt in formats.FORMATS.values():
        for tool, how in fmt.usage:
            tools.setdefault(tool, []).append((fmt.name, how))
    own = {t: e for t, e in tools.items() if all(how.startswith("its ") for _, how in e)}
    parts = [f"With {tool}: " + " and ".join(f"the `{name}` files {'are ' if i == 0 else ''}{how}"
                                            for i, (name, how) in enumerate(entries)) + "."
             for tool, entries in own.items()]
    reads = []
    for tool, entries in tools.items():
        if tool in own:
            continue
        groups: dict[str, list[str]] = {}
        for name, how in entries:
            groups.setdefault(how, []).append(f"`{name}`")
        reads.append(f"{tool} reads " + " and ".join(f"{' / '.join(n)} ({how})" for how, n in groups.items()))
    if reads:
        parts.append("; ".join(reads) + ".")
    return textwrap.wrap(" ".join(parts), width=width, break_on_hyphens=False)


def _shown(text: str) -> str:
    return text.replace("\n", "\\n")


def prompt_layout_lines(chosen: Sequence[str], records: Sequence[Record]) -> list[str]:
    """How instruction and input reach the user turn in each exported format, and how the trainers
    that join alpaca's fields themselves differ (text.prompt.TRAINER_JOINS), so a user knows the text
    a model will see."""
    with_input = sum(1 for r in records if r.input.strip())
    joined = [f"`{name}`" for name in chosen if formats.get(name).joins_prompt()]
    apart = [f"`{name}`" for name in chosen if not formats.get(name).joins_prompt()]
    parts = [f"{with_input} of {len(records)} records have an input."]
    if joined:
        parts.append(f"In the {', '.join(joined)} files the user turn is the instruction, a blank line "
                     f"(`{_shown(PROMPT_JOIN)}`), then the input when there is one: the same join in every "
                     "format, and the one `sftdata finetune` trains on.")
    if apart:
        trainers = ", ".join(f"{tool} with one newline (`instruction{_shown(join)}input`)"
                             for tool, join in TRAINER_JOINS.items())
        parts.append(f"{' and '.join(apart)} keeps `instruction` and `input` apart, and the trainer joins "
                     f"them: {trainers}; axolotl's `alpaca` type and torchtune's instruct template put them "
                     "under `### Instruction:` / `### Input:` headings.")
    if joined and apart and with_input:
        parts.append("So a record with an input is not the same training text in both: train on one format.")
    return ["## Prompt layout", "", *textwrap.wrap(" ".join(parts), width=100, break_on_hyphens=False), ""]


def render_card(name: str, records: Sequence[Record], by_split: dict[str, list[Record]],
                summary: dict[str, Any], *, license: str | None = None, license_name: str | None = None,
                sources: Sequence[str | os.PathLike[str]] = (), system: str | None = None,
                with_system: bool = False) -> str:
    license_id = check_license(license, license_name)
    lines = ["---", _header(name, records, summary, license_id, license_name).rstrip(), "---", "", f"# {name}", "",
             f"An instruction-tuning (SFT) dataset of {len(records)} records, exported by sftdata.", ""]
    lines += ["## Files", "", "| format | " + " | ".join(summary["splits"]) + " | columns |",
              "|---|" + "---|" * len(summary["splits"]) + "---|"]
    for fmt in summary["formats"]:
        cells = [f"`{summary['files'][fmt][s]}` ({summary['splits'][s]})" if s in summary["files"][fmt] else "—"
                 for s in summary["splits"]]
        lines.append(f"| {fmt} | " + " | ".join(cells) + f" | {', '.join(summary['columns'][fmt])} |")
    ratios = ", ".join(f"{s} {r:g}" for s, r in summary["ratios"].items())
    lines += ["", f"Splits: {ratios}, seed {summary['seed']}. Stratified by (is_classification, language). "
              + describe(summary.get("split_groups", {})), ""]
    if summary["omitted_splits"]:
        lines += [f"Not written (no records): {', '.join(summary['omitted_splits'])}.", ""]
    for warning in summary.get("warnings", []):
        lines += [f"Note: {warning}.", ""]
    if summary.get("languages_detected"):
        lines += [f"Languages: {summary['languages_detected']} of {len(records)} records had none recorded; "
                  "theirs was detected from the text (script first, then langdetect).", ""]
    lines += prompt_layout_lines(summary["formats"], records)
    lines += provenance_section(sources)
    stats = table1(records)
    lines += ["## Statistics", "", "Table 1 of Self-Instruct (Wang et al., 2022); lengths in "
              f"{stats['length_unit']}.", "", "| statistic | value |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {_short(v, 120)} |" for k, v in stats.items() if k != "length_unit"]
    lines += [""]
    lines += ["## Examples", "", "From the train split, in alpaca form:", ""]
    lines += _examples(by_split.get("train", []), system, with_system)
    lines += _usage(name, summary)
    shown = f"`{license_id}`" + (f" ({license_name})" if license_name else "")
    lines += ["## License", "",
              shown + (" — not set: choose one with `sftdata export --license ID` and check the "
                       "terms of the model that generated the data." if license_id == "unknown" else "."),
              ""]
    return "\n".join(lines)


def write_card(out_dir: Path, records: Sequence[Record], by_split: dict[str, list[Record]],
               summary: dict[str, Any], **kwargs: Any) -> Path:
    text = render_card(summary["name"], records, by_split, summary, **kwargs)
    path = out_dir / "README.md"
    write_text_atomic(path, text)
    return path
