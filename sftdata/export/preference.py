"""Export of preference pairs in the shapes preference trainers read as they are.

    trl                     {"prompt": str, "chosen": str, "rejected": str}       TRL, standard
    trl-conversational      {"prompt": [messages], "chosen": [{"role": "assistant", ...}],
                             "rejected": [{"role": "assistant", ...}]}             TRL, conversational
    llamafactory-alpaca     {"instruction", "input", "chosen", "rejected"} (+ "system")
    llamafactory-sharegpt   {"conversations": [{"from", "value"}...], "chosen": {"from": "gpt", "value"},
                             "rejected": {"from": "gpt", "value"}} (+ "system")

LLaMA-Factory finds the files through ``dataset_info.json`` entries with ``"ranking": true`` and
the columns named (its data/README.md, "Preference Dataset"); TRL reads the JSONL with
``load_dataset("json", ...)`` (its "Dataset formats" page, preference type). Splits are the SFT
export's (:func:`sftdata.export.stage.assign_splits`): pairs are grouped by their prompt, so every
pair of a prompt, and a prompt differing only in case or spacing, lands in the same split.

TRL's standard format has no place for a system prompt: it is left out there (the conversational
one keeps it as the first message) and the summary says so.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.records import Record, write_jsonl, write_text_atomic
from ..finetune.preference import PreferencePair
from .config import PREFERENCE_FORMATS, parse_split
from .splits import SPLITS, assign_splits
from .stage import _dataset_name

_SHAREGPT_ROLE = {"user": "human", "assistant": "gpt", "system": "system"}


def _system(pair: PreferencePair) -> str:
    return pair.prompt[0]["content"] if pair.prompt and pair.prompt[0]["role"] == "system" else ""


def _turns(pair: PreferencePair) -> list[dict[str, str]]:
    return [m for m in pair.prompt if m["role"] != "system"]


def _last_user(pair: PreferencePair) -> str:
    return _turns(pair)[-1]["content"]


def preference_row(pair: PreferencePair, fmt: str, with_system: bool) -> dict[str, Any]:
    """One pair as a row of ``fmt``; ``with_system``: the files carry a system column."""
    system = _system(pair)
    if fmt == "trl":
        return {"prompt": _last_user(pair), "chosen": pair.chosen, "rejected": pair.rejected}
    if fmt == "trl-conversational":
        return {"prompt": [dict(m) for m in pair.prompt],
                "chosen": [{"role": "assistant", "content": pair.chosen}],
                "rejected": [{"role": "assistant", "content": pair.rejected}]}
    if fmt == "llamafactory-alpaca":
        # the reverse of how the readers import alpaca: instruction, blank line, input
        instruction, _, query = _last_user(pair).partition("\n\n")
        row = {"instruction": instruction, "input": query, "chosen": pair.chosen, "rejected": pair.rejected}
    elif fmt == "llamafactory-sharegpt":
        row = {"conversations": [{"from": _SHAREGPT_ROLE[m["role"]], "value": m["content"]} for m in _turns(pair)],
               "chosen": {"from": "gpt", "value": pair.chosen}, "rejected": {"from": "gpt", "value": pair.rejected}}
    else:
        raise ConfigError(f"unknown preference format {fmt!r}; choose from {', '.join(PREFERENCE_FORMATS)}",
                          "--format")
    if with_system:
        row["system"] = system
    return row


def preference_dataset_info(fmt: str, file_name: str, with_system: bool) -> dict[str, Any] | None:
    """LLaMA-Factory's dataset_info.json entry (ranking: true); None for TRL's formats."""
    if fmt == "llamafactory-alpaca":
        entry: dict[str, Any] = {"file_name": file_name, "formatting": "alpaca", "ranking": True,
                                 "columns": {"prompt": "instruction", "query": "input",
                                             "chosen": "chosen", "rejected": "rejected"}}
    elif fmt == "llamafactory-sharegpt":
        entry = {"file_name": file_name, "formatting": "sharegpt", "ranking": True,
                 "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
                 "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                          "assistant_tag": "gpt", "system_tag": "system"}}
    else:
        return None
    if with_system:
        entry["columns"]["system"] = "system"
    return entry


def split_of_pairs(pairs: Sequence[PreferencePair], ratios: Sequence[float], seed: int) -> list[str]:
    """The SFT export's leak-free assignment, with each pair standing in as a record of its prompt."""
    stand_ins = [Record(instruction=_last_user(p), lang=p.meta.get("lang") if isinstance(p.meta, dict) else None)
                 for p in pairs]
    return assign_splits(stand_ins, ratios, seed)


def export_pairs(pairs: Sequence[PreferencePair], out_dir: str | os.PathLike[str],
                 formats: Sequence[str] = PREFERENCE_FORMATS, *, split: Sequence[float] | str = (0.9, 0.05, 0.05),
                 seed: int = 0, name: str | None = None, card: bool = True) -> dict[str, Any]:
    """Write ``pairs`` in each format, split train/validation/test, with dataset_info.json and a card."""
    formats = list(dict.fromkeys(formats))
    for fmt in formats:
        if fmt not in PREFERENCE_FORMATS:
            raise ConfigError(f"unknown preference format {fmt!r}; choose from {', '.join(PREFERENCE_FORMATS)}",
                              "--format")
    if not pairs:
        raise ConfigError("no pairs to export")
    ratios = parse_split(split)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = _dataset_name(out, name)
    split_names = split_of_pairs(pairs, ratios, seed)
    by_split = {s: [p for p, n in zip(pairs, split_names) if n == s] for s in SPLITS}
    with_system = any(_system(p) for p in pairs)
    files: dict[str, dict[str, str]] = {}
    entries: dict[str, Any] = {}
    for fmt in formats:
        files[fmt] = {}
        for split_name in SPLITS:
            path = out / fmt / f"{split_name}.jsonl"
            if not by_split[split_name]:
                path.unlink(missing_ok=True)
                continue
            write_jsonl(path, [preference_row(p, fmt, with_system) for p in by_split[split_name]])
            files[fmt][split_name] = f"{fmt}/{split_name}.jsonl"
            entry = preference_dataset_info(fmt, files[fmt][split_name], with_system)
            if entry is not None:
                entries[f"{name}_{fmt.replace('-', '_')}_{split_name}"] = entry
    _merge_dataset_info(out / "dataset_info.json", entries)
    margins = [float(p.meta["margin"]) for p in pairs if isinstance(p.meta.get("margin"), (int, float))]
    summary: dict[str, Any] = {
        "out": str(out), "name": name, "pairs": len(pairs), "formats": formats,
        "splits": {s: len(by_split[s]) for s in SPLITS}, "files": files,
        "dataset_info": str(out / "dataset_info.json"),
        "mean_margin": round(statistics.fmean(margins), 4) if margins else None,
        "provenance": dict(Counter(_provenance_kind(p) for p in pairs)),
    }
    if with_system and "trl" in formats:
        summary["warnings"] = ["TRL's standard format has no system field: system prompts are left out of it"]
    if card:
        summary["card"] = str(write_preference_card(out, name, summary))
    return summary


def _provenance_kind(pair: PreferencePair) -> str:
    provenance = pair.meta.get("provenance") if isinstance(pair.meta, dict) else None
    return str(provenance.get("ranked_by", "unknown")) if isinstance(provenance, dict) else "unknown"


def _merge_dataset_info(path: Path, entries: dict[str, Any]) -> None:
    info: dict[str, Any] = {}
    if path.exists():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            info = {}
    info.update(entries)
    write_text_atomic(path, json.dumps(info, ensure_ascii=False, indent=2) + "\n")


def write_preference_card(out: Path, name: str, summary: dict[str, Any]) -> Path:
    configs = []
    for fmt, files in summary["files"].items():
        configs.append(f"- config_name: {fmt}\n  data_files:")
        configs += [f"  - split: {split}\n    path: {rel}" for split, rel in files.items()]
    first = next(iter(summary["files"]))
    lines = [
        "---", "task_categories:", "- text-generation", "tags:", "- preference", "- dpo", "- sftdata",
        "configs:", *configs, "---", "", f"# {name}", "",
        f"{summary['pairs']} preference pairs (prompt, chosen, rejected) made by sftdata.", "",
        "| split | pairs |", "|---|---|", *[f"| {s} | {n} |" for s, n in summary["splits"].items() if n], "",
        f"Mean margin between chosen and rejected: {summary['mean_margin']}. "
        f"Ranked by: {', '.join(f'{k} ({v})' for k, v in summary['provenance'].items())}.", "",
        "Splits are leak-free: every pair of a prompt (case and spacing folded) is in one split.", "",
        "## Use", "", "```python", "from datasets import load_dataset",
        f"ds = load_dataset('json', data_files={{'train': '{summary['files'][first].get('train', '')}'}})",
        "```", "",
        "TRL: `DPOTrainer(..., train_dataset=load_dataset('json', data_files='trl-conversational/train.jsonl')"
        "['train'])`. LLaMA-Factory: copy this directory's dataset_info.json entries (`ranking: true`) and "
        "set `stage: dpo` or `stage: rm`. sftdata: `sftdata finetune train trl/train.jsonl --method dpo`.", "",
    ]
    path = out / "README.md"
    write_text_atomic(path, "\n".join(lines))
    return path
