"""``sftdata report``: what a dataset looks like, as statistics, PNG figures and one self-contained HTML page.

Inputs are JSONL files (any supported shape) and run directories, flat (``accepted.jsonl``,
``rejected.jsonl``, ``stats.json``, ``config.json`` at the top) or staged (``generate/``,
``filter/``, ``clean/``, ``augment/``, ``export/``, ``finetune/``, ``eval/`` subdirectories, each
with its own files). In a run directory the dataset is the top-level ``accepted.jsonl`` if there is
one, else that of the last of generate, filter, clean, augment that has one, else the export
(``export/<format>/*.jsonl``, alpaca first). Rejections are read from ``rejected.jsonl`` at the top
and in every subdirectory.

ROUGE-L against the seeds (the Self-Instruct paper's Figure 3) is computed here, each distinct
non-seed instruction against every seed instruction, with the filter's ROUGE-L (CJK-aware
tokenizer). Seeds come from ``--seeds``, else the seed file named in the run's ``config.json``, else
the dataset's own ``source: "seed"`` records. With none of these, the figure shows ``meta.rouge_max``
as the filter recorded it (against seeds *and* earlier instructions, so higher than Figure 3), and
says so.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, DataError
from ..core.records import Record, read_all, read_records
from ..core.stats import table1
from . import data as views
from . import html
from . import judge as judge_report

STAGES = ("generate", "filter", "clean", "augment", "export", "finetune", "eval")
DATA_STAGES = ("generate", "filter", "clean", "augment")  # pipeline order: the last one present wins
EXPORT_FORMATS = ("alpaca", "sharegpt", "messages", "prompt-completion")


@dataclass
class Sources:
    """Where the report's inputs come from, once discovered."""

    data_files: list[Path] = field(default_factory=list)
    rejected_files: list[tuple[str, Path]] = field(default_factory=list)  # (stage hint, path)
    stats_files: list[tuple[str, Path]] = field(default_factory=list)
    configs: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)  # (its directory, config)
    finetune_dirs: list[Path] = field(default_factory=list)
    eval_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _run_data_files(run: Path) -> list[Path]:
    if (run / "accepted.jsonl").is_file():
        return [run / "accepted.jsonl"]
    for stage in reversed(DATA_STAGES):
        if (run / stage / "accepted.jsonl").is_file():
            return [run / stage / "accepted.jsonl"]
    for export_dir in (run / "export", run):
        for fmt in EXPORT_FORMATS:
            files = sorted((export_dir / fmt).glob("*.jsonl")) if (export_dir / fmt).is_dir() else []
            if files:
                return files
    return []


def _stage_order(path: Path) -> tuple[int, str]:
    """Pipeline order for stage directories, then any other directory by name."""
    return (STAGES.index(path.name) if path.name in STAGES else len(STAGES), path.name)


def discover(inputs: Sequence[str | os.PathLike[str]], finetune: str | None = None) -> Sources:
    found = Sources()
    for item in inputs:
        path = Path(item)
        if path.is_file():
            found.data_files.append(path)
            continue
        if not path.is_dir():
            raise ConfigError(f"{path}: no such file or directory", "RUN_DIR_OR_JSONL")
        data = _run_data_files(path)
        if not data:
            raise DataError(path, None, "no accepted.jsonl, stage accepted.jsonl or export files in this directory")
        found.data_files += data
        for sub in [path] + sorted((p for p in path.iterdir() if p.is_dir()), key=_stage_order):
            hint = "" if sub == path else sub.name
            if (sub / "rejected.jsonl").is_file():
                found.rejected_files.append((hint, sub / "rejected.jsonl"))
            if (sub / "stats.json").is_file():
                found.stats_files.append((hint or "run", sub / "stats.json"))
            if (sub / "config.json").is_file():
                config = views.read_json(sub / "config.json")
                if isinstance(config, dict):
                    found.configs.append((sub, config))
        if (path / "finetune").is_dir():
            found.finetune_dirs.append(path / "finetune")
        if (path / "eval" / "eval.json").is_file():
            found.eval_files.append(path / "eval" / "eval.json")
    if finetune is not None:
        if not Path(finetune).is_dir():
            raise ConfigError(f"{finetune}: no such directory", "--finetune")
        found.finetune_dirs.append(Path(finetune))
    return found


def load_seeds(seeds: str | None, sources: Sources, records: Sequence[Record]) -> tuple[list[Record] | None, str]:
    if seeds is not None:
        if not Path(seeds).is_file():
            raise ConfigError(f"{seeds}: no such file", "--seeds")
        return list(read_records(seeds)), seeds
    for run, config in sources.configs:
        files = views.seed_files_from_config(run, config)
        if files:
            return read_all(files), ", ".join(map(str, files))
    own = [r for r in records if r.source == "seed"]
    return (own, "the dataset's seed records") if own else (None, "")


def _finetune_metrics(directory: Path) -> Path | None:
    """The fine-tune helper's metrics.json (or transformers' trainer_state.json), here or one level down."""
    for name in ("metrics.json", "trainer_state.json"):
        for candidate in [directory / name] + sorted(directory.glob(f"*/{name}")):
            if candidate.is_file():
                return candidate
    return None


def _describe(values: list[int]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {"n": len(values), "mean": round(statistics.fmean(values), 2), "median": statistics.median(values),
            "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], "max": ordered[-1]}


def collect(inputs: Sequence[str | os.PathLike[str]], finetune: str | None = None,
            seeds: str | None = None) -> tuple[dict[str, Any], list[Record], dict[str, Any]]:
    """Everything the report shows, as JSON-ready statistics; also the records and the raw series."""
    sources = discover(inputs, finetune)
    records = read_all(sources.data_files)
    seed_records, seed_origin = load_seeds(seeds, sources, records)
    rouge = views.rouge_vs_seeds(records, seed_records)
    rouge["origin"] = seed_origin if rouge["basis"] == "seeds" else ""
    lengths = views.lengths(records)
    curves: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for directory in sources.finetune_dirs:
        path = _finetune_metrics(directory)
        found = views.loss_curves(views.read_json(path)) if path else {}
        if found:
            curves[str(directory)] = found
        else:
            sources.notes.append(f"{directory}: no loss curves found (looked for metrics.json, trainer_state.json)")
    scores = rouge["scores"]
    stats: dict[str, Any] = {
        "inputs": [str(p) for p in inputs], "data_files": [str(p) for p in sources.data_files],
        "table1": table1(records),
        "languages": dict(Counter(r.lang or "unknown" for r in records).most_common()),
        "lineage": views.lineage(records),
        "lengths": {lang: {k: _describe(v) for k, v in fields.items()} for lang, fields in lengths.items()},
        "leading_words": views.leading_words(records),
        "rouge_vs_seeds": {"basis": rouge["basis"], "seeds": rouge["seeds"], "seed_origin": rouge["origin"],
                           "instructions": len(scores),
                           "mean": round(statistics.fmean(scores), 4) if scores else None,
                           "median": round(statistics.median(scores), 4) if scores else None,
                           "histogram": _histogram(scores)},
        "rejections": views.rejections(sources.rejected_files),
        "usage": views.usage(sources.stats_files),
        "finetune": {d: {name: {"points": len(p), "first": p[0][1], "last": p[-1][1], "min": min(y for _, y in p)}
                         for name, p in c.items()} for d, c in curves.items()},
        "eval": [],  # filled just below, where each eval.json is read (once)
        "notes": sources.notes,
    }
    eval_reports = [views.read_json(p) for p in sources.eval_files]
    stats["eval"] = [{"file": str(p), **_eval_summary(report)}
                     for p, report in zip(sources.eval_files, eval_reports)]
    stats["rejected_total"] = sum(sum(r.values()) for r in stats["rejections"].values())
    stats["judge"] = judge_report.collect(inputs, records)
    raw = {"rouge": scores, "lengths": lengths, "curves": curves, "eval": eval_reports}
    return stats, records, raw


def _histogram(scores: list[float], bins: int = 20) -> list[int]:
    counts = [0] * bins
    for score in scores:
        counts[min(bins - 1, int(score * bins))] += 1
    return counts


def _eval_summary(report: Any) -> dict[str, Any]:
    """Each model's headline metrics (and difference to base) from an eval.json."""
    from ..eval.stage import flat_metrics

    if not isinstance(report, dict) or not isinstance(report.get("models"), list):
        return {"models": []}
    return {"models": [{"name": m.get("name"), "metrics": flat_metrics(m), "delta": m.get("delta", {})}
                       for m in report["models"] if isinstance(m, dict)]}


def build_report(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                 finetune: str | None = None, seeds: str | None = None,
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write ``report.html``, ``stats.json`` and ``figures/*.png`` under ``out``; return the statistics."""
    from . import plots as report_plots

    stats, records, raw = collect(inputs, finetune, seeds)
    out_dir = Path(out)
    try:
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out_dir}: {exc.strerror}", "--out") from None
    if log:
        log(f"report on {len(records)} records from {len(stats['data_files'])} file(s)")
    figures, notes = report_plots.draw(stats, raw)
    stats["notes"] = stats["notes"] + notes
    stats["figures"] = {}
    for fig in figures.values():
        path = out_dir / "figures" / f"{fig.name}.png"
        path.write_bytes(fig.png)
        stats["figures"][fig.name] = str(path.relative_to(out_dir))
    page = html.render_page(stats, figures, raw)
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    views.write_json(out_dir / "stats.json", stats)
    stats["files"] = {"report": str(out_dir / "report.html"), "stats": str(out_dir / "stats.json")}
    return stats
