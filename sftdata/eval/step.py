"""The eval stage as a step of ``sftdata run``: the base model and the run's adapters (SFT, DPO) on the
held-out split; after a dpo stage also preference accuracy on the held-out pairs."""

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
    adapters = [str(ctx.run_dir / name) for name in ("finetune", "dpo") if ctx.output_of(name) is not None]
    finetune = ctx.config_of("finetune")
    base_model = finetune.base_model if finetune is not None else None
    preference = preference_eval(ctx, base_model)
    labels_from = [str(p) for p in ctx.output_of("augment") or ctx.output_of("clean") or []]
    report = evaluate([str(data)], base_model=base_model, adapters=adapters, options=config,
                      labels_from=labels_from, log=ctx.log)
    write_outputs(report, ctx.out)
    if preference is not None:
        report["preference"] = preference
    return StageResult([ctx.out], {**report, **headline(report)})


def preference_eval(ctx: StageContext, base_model: str | None) -> dict[str, Any] | None:
    """After a dpo stage: preference accuracy and margin of the base, the SFT and the DPO adapters on
    the pairs stage's held-out split (``eval/preference/``); None without a dpo stage or held-out pairs."""
    from ..pairs.step import pairs_split
    from .preference import evaluate_preferences, write_preference_outputs

    pairs, dpo = ctx.output_of("pairs"), ctx.config_of("dpo")
    if not pairs or dpo is None or ctx.output_of("dpo") is None:
        return None
    data = pairs_split(pairs[0], "test") or pairs_split(pairs[0], "validation")
    if data is None:
        ctx.log("[eval] the pairs export holds no held-out pairs; no preference evaluation")
        return None
    adapters = [str(ctx.run_dir / name) for name in ("finetune", "dpo") if ctx.output_of(name) is not None]
    report = evaluate_preferences([str(data)], base_model=base_model, adapters=adapters, log=ctx.log,
                                  beta=dpo.beta)
    write_preference_outputs(report, ctx.out / "preference")
    return report


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """eval.json's headline for the end-of-run table: records evaluated, loss and ROUGE-L as
    ``base -> adapter`` (each adapter)."""
    models = report.get("models") or []
    if not models:
        return {}
    out: dict[str, Any] = {"records": (report.get("counts") or {}).get("evaluated")}
    for key in ("loss", "rouge_l"):
        values = [m.get(key) for m in models]
        if all(isinstance(v, (int, float)) for v in values):
            out[key] = " -> ".join(f"{v:.4g}" for v in values)
    return out
