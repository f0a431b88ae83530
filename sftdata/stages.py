"""How ``sftdata run`` calls each stage's library function: inputs from the stage before, outputs for the next.

Each ``run_<stage>(ctx, section)`` returns ``(data files produced, the stage's summary)``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .core.errors import DataError
from .pipeline import CleanSection, Context, EvalSection, ExportSection, ReportSection


def _kept(paths: list[Path], stage: str) -> list[Path]:
    """The non-empty files of ``paths``; an error naming the stage when every one is empty."""
    kept = [p for p in paths if p.exists() and p.stat().st_size > 0]
    if not kept:
        raise DataError(paths[-1], None, f"the {stage} stage kept no records; see its rejected.jsonl for why")
    return kept


def _llm_config(ctx: Context):
    return ctx.pipeline.llm.to_llm_config()


def run_generate(ctx: Context, section: Any) -> tuple[list[Path], dict]:
    from .generate import generate

    config = dataclasses.replace(section, seeds=list(ctx.pipeline.seeds))
    out = ctx.dir("generate")
    result = generate(config, _llm_config(ctx), out, progress=ctx.progress)
    return _kept([out / "accepted.jsonl"], "generate"), result


def run_filter(ctx: Context, section: Any) -> tuple[list[Path], dict]:
    from .filter.stage import run_filter as filter_files

    out = ctx.dir("filter")
    # generated records are compared with the seeds they grew from (not when the seeds are the input)
    against = ctx.seed_files() if "generate" in ctx.outputs else []
    result = filter_files(ctx.latest_data(), out, section, against, progress=ctx.progress)
    return _kept([out / "accepted.jsonl"], "filter"), result


def run_clean(ctx: Context, section: CleanSection) -> tuple[list[Path], dict]:
    from .clean.stage import CleanConfig
    from .clean.stage import run_clean as clean_files

    config = CleanConfig.from_options(no_rule=section.no_rule, mask_pii=section.mask_pii, outlier_z=section.outlier_z,
                                      outlier_short=section.outlier_short)
    out = ctx.dir("clean")
    result = clean_files(ctx.latest_data(), out, config, progress=ctx.progress)
    return _kept([out / "accepted.jsonl"], "clean"), result


def run_augment(ctx: Context, section: Any) -> tuple[list[Path], dict]:
    from .augment.api import augment

    inputs = ctx.latest_data()
    out = ctx.dir("augment")
    result = augment(section, _llm_config(ctx), inputs, out, progress=ctx.progress)
    # augment writes only the new records; the next stage gets the input set and them together
    new = out / "accepted.jsonl"
    return [*inputs, new] if new.exists() and new.stat().st_size > 0 else inputs, result


class _SpecContext:
    """The StageContext (sftdata.core.stage) of a registry-style stage, over this pipeline's Context."""

    def __init__(self, ctx: Context, name: str) -> None:
        self._ctx = ctx
        self.out, self.run_dir = ctx.dir(name), ctx.pipeline.out
        self.seed, self.lang, self.progress = ctx.pipeline.seed, ctx.pipeline.lang, ctx.progress

    def log(self, message: str) -> None:
        self._ctx.log(message)

    def llm_config(self, section: str = "llm"):
        return _llm_config(self._ctx)

    def data(self) -> list[Path]:
        return self._ctx.latest_data()

    def seed_files(self) -> list[Path]:
        return self._ctx.seed_files()

    def output_of(self, stage: str) -> list[Path] | None:
        return self._ctx.outputs.get(stage)


def _run_spec(ctx: Context, name: str, section: Any) -> tuple[list[Path], dict]:
    import importlib

    result = importlib.import_module(f".{name}", __package__).SPEC.run(_SpecContext(ctx, name), section)
    return _kept(result.outputs, name), result.summary


def run_judge(ctx: Context, section: Any) -> tuple[list[Path], dict]:
    return _run_spec(ctx, "judge", section)


def run_select(ctx: Context, section: Any) -> tuple[list[Path], dict]:
    return _run_spec(ctx, "select", section)


def run_export(ctx: Context, section: ExportSection) -> tuple[list[Path], dict]:
    from .core.records import read_all, write_jsonl
    from .export.stage import export, parse_formats, parse_split

    inputs = ctx.latest_data()
    records = read_all(inputs)
    # the run's final dataset at the top of the run directory (DESIGN.md), which the report reads
    write_jsonl(ctx.pipeline.out / "accepted.jsonl", records)
    out = ctx.dir("export")
    result = export(records, out, parse_formats(section.formats), split=parse_split(section.split),
                    seed=ctx.pipeline.seed, system=section.system, hf=section.hf, license=section.license,
                    name=ctx.pipeline.out.name, sources=inputs)
    return [out], result


def _export_file(ctx: Context, split: str) -> Path:
    export_dir = ctx.dir("export")
    for fmt in ("messages", "sharegpt", "alpaca", "prompt-completion"):
        path = export_dir / fmt / f"{split}.jsonl"
        if path.exists() and path.stat().st_size > 0:
            return path
    raise FileNotFoundError(f"no exported {split} split under {export_dir}")


def run_finetune(ctx: Context, section: Any) -> tuple[list[Path], dict]:
    from .finetune.train import finetune

    out = ctx.dir("finetune")
    eval_data = []
    try:
        eval_data = [str(_export_file(ctx, "validation"))]
    except FileNotFoundError:
        pass
    config = dataclasses.replace(section, data=[str(_export_file(ctx, "train"))], out=str(out),
                                 eval_data=eval_data, progress=ctx.progress)
    if ctx.pipeline.llm.model and not ctx.pipeline.llm.base_url and config.base_model is None:
        config = dataclasses.replace(config, base_model=ctx.pipeline.llm.model)
    result = finetune(config)
    return [out], result


def run_pairs(ctx: Context, section: Any) -> tuple[list[Path], dict]:
    """Pairs from the run's records; with a finetune stage before it and no candidate source named,
    the candidates are one response of the base model and one of the SFT adapter (and the records')."""
    from .judge import JudgeConfig, judge_llm_config
    from .pairs.stage import pairs_from_files

    config = section
    if "finetune" in ctx.outputs and not (section.candidates or section.candidate_model or section.candidate_adapter):
        config = dataclasses.replace(section, candidates=1, candidate_adapter=[str(ctx.dir("finetune"))])
    llm_config = _llm_config(ctx)
    judge_section = ctx.pipeline.stages.get("judge") or JudgeConfig()
    judge_llm = judge_llm_config(judge_section, llm_config) if config.rank_by in ("judge", "pairwise") else None
    out = ctx.dir("pairs")
    result = pairs_from_files(ctx.latest_data(), config, out, llm_config=llm_config, judge_config=judge_section,
                              judge_llm=judge_llm)
    if not result["pairs"]:
        raise DataError(out / "rejected.jsonl", None, "the pairs stage made no pair; see its rejected.jsonl for why")
    return [out], result


def _pairs_file(ctx: Context, split: str) -> Path | None:
    for path in sorted((ctx.dir("pairs") / "export").glob(f"*/{split}.jsonl")):
        if path.stat().st_size > 0:
            return path
    return None


def run_dpo(ctx: Context, section: Any) -> tuple[list[Path], dict]:
    from .finetune.train import finetune

    train = _pairs_file(ctx, "train")
    if train is None:
        raise DataError(ctx.dir("pairs"), None, "the dpo stage needs the pairs stage's export (no train split)")
    validation = _pairs_file(ctx, "validation")
    out = ctx.dir("dpo")
    config = dataclasses.replace(section, data=[str(train)], out=str(out), progress=ctx.progress,
                                 eval_data=[str(validation)] if validation else [],
                                 ref_adapter=section.ref_adapter or (str(ctx.dir("finetune"))
                                                                     if "finetune" in ctx.outputs else None))
    finetune_section = ctx.pipeline.stages.get("finetune")
    if config.base_model is None and finetune_section is not None:
        config = dataclasses.replace(config, base_model=finetune_section.base_model)
    return [out], finetune(config)


def _preference_eval(ctx: Context, out: Path, base_model: str | None) -> dict | None:
    """Held-out pairs: preference accuracy / margin of base, SFT and DPO adapters (eval/preference.json)."""
    from .eval.preference import evaluate_preferences, write_preference_outputs

    data = _pairs_file(ctx, "test") or _pairs_file(ctx, "validation")
    if data is None or "dpo" not in ctx.outputs:
        return None
    adapters = [str(ctx.dir(n)) for n in ("finetune", "dpo") if n in ctx.outputs]
    report = evaluate_preferences([str(data)], base_model=base_model, adapters=adapters, log=ctx.log,
                                  beta=ctx.pipeline.stages["dpo"].beta)
    write_preference_outputs(report, out / "preference")
    return report


def run_eval(ctx: Context, section: EvalSection) -> tuple[list[Path], dict]:
    from .eval.stage import EvalOptions, evaluate, write_outputs

    out = ctx.dir("eval")
    try:
        data = _export_file(ctx, "test")
    except FileNotFoundError:
        try:  # a small dataset may leave the test split empty; the validation split is still held out
            data = _export_file(ctx, "validation")
        except FileNotFoundError:
            ctx.log("[eval] no held-out records (test and validation splits are empty); skipped")
            return [], {"skipped": "no held-out records"}
    adapters = [str(ctx.dir(n)) for n in ("finetune", "dpo") if n in ctx.outputs]
    base_model = ctx.pipeline.stages["finetune"].base_model if ctx.pipeline.stages.get("finetune") else None
    preference = _preference_eval(ctx, out, base_model)
    options = EvalOptions(max_new_tokens=section.max_new_tokens, batch_size=section.batch_size,
                          max_len=section.max_len, limit=section.limit)
    labels_from = [str(p) for p in ctx.outputs.get("augment") or ctx.outputs.get("clean") or []]
    report = evaluate([str(data)], base_model=base_model, adapters=adapters, options=options,
                      labels_from=labels_from, log=ctx.log)
    write_outputs(report, out)
    if preference is not None:
        report["preference"] = preference
    return [out], report


def run_report(ctx: Context, section: ReportSection) -> tuple[list[Path], dict]:
    from .report.stage import build_report

    out = ctx.dir("report")
    finetune = str(ctx.dir("finetune")) if "finetune" in ctx.outputs else None
    seeds = ctx.pipeline.seeds[0] if ctx.pipeline.seeds else None
    result = build_report([str(ctx.pipeline.out)], out, finetune=finetune, seeds=seeds, log=ctx.log)
    return [out / "report.html"], result


def short_summary(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """A few numbers per stage for the end-of-run table."""
    keys = ("accepted", "rejected", "kept", "instances", "instructions", "records", "judged", "unparsable",
            "mean_score", "train_loss", "eval_loss", "seconds", "written", "pairs", "eval_accuracy")
    return {k: result[k] for k in keys if k in result and isinstance(result[k], (int, float, str))}
