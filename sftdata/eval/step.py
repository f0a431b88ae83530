"""The eval stage as a step of ``sftdata run``: the base model and the run's adapter on the held-out split."""

from __future__ import annotations

from typing import Any

from ..core.stage import StageContext, StageResult


def run(ctx: StageContext, config: Any) -> StageResult:
    from ..export.step import exported_file
    from .stage import evaluate, write_outputs

    export_dir = ctx.run_dir / "export"
    try:
        data = exported_file(export_dir, "test")
    except FileNotFoundError:
        try:  # a small dataset may leave the test split empty; the validation split is still held out
            data = exported_file(export_dir, "validation")
        except FileNotFoundError:
            ctx.log("[eval] no held-out records (test and validation splits are empty); skipped")
            return StageResult([], {"skipped": "no held-out records"})
    finetuned = ctx.output_of("finetune") is not None
    adapters = [str(ctx.run_dir / "finetune")] if finetuned else []
    finetune = ctx.config_of("finetune")
    base_model = finetune.base_model if finetune is not None else None
    labels_from = [str(p) for p in ctx.output_of("augment") or ctx.output_of("clean") or []]
    report = evaluate([str(data)], base_model=base_model, adapters=adapters, options=config,
                      labels_from=labels_from, log=ctx.log)
    write_outputs(report, ctx.out)
    return StageResult([ctx.out], report)
