"""The dpo stage of ``sftdata run``: ``finetune --method dpo`` on the pairs stage's export, on top of
the finetune stage's SFT adapter (its reference). The training itself is :mod:`sftdata.finetune.dpo`;
this package only gives the stage its place in the registry (importing it stays cheap: no torch)."""

from __future__ import annotations

from ..core.stage import StageSpec
from ..finetune.config import FinetuneConfig


def _split_file(pairs_dir, split: str):
    from pathlib import Path

    for path in sorted((Path(pairs_dir) / "export").glob(f"*/{split}.jsonl")):
        if path.stat().st_size > 0:
            return path
    return None


def _run(ctx, config):
    import dataclasses
    from pathlib import Path

    from ..core.errors import DataError
    from ..core.stage import StageResult
    from ..finetune.train import finetune

    pairs = ctx.output_of("pairs")
    train = _split_file(pairs[0], "train") if pairs else None
    if train is None:
        raise DataError(Path(ctx.out), None, "the dpo stage needs the pairs stage's export (no train split)")
    validation = _split_file(pairs[0], "validation")
    finetuned = ctx.output_of("finetune")
    config = dataclasses.replace(config, method="dpo", data=[str(train)], out=str(ctx.out), progress=ctx.progress,
                                 eval_data=[str(validation)] if validation else [],
                                 ref_adapter=config.ref_adapter or (str(finetuned[0]) if finetuned else None))
    return StageResult(outputs=[Path(ctx.out)], summary=finetune(config))


SPEC = StageSpec(name="dpo", config=FinetuneConfig, run=_run, produces_data=False, enabled_by_default=False,
                 help="DPO of a LoRA adapter on the pairs stage's export, the SFT adapter as reference",
                 summary_keys=("pairs", "eval_accuracy", "eval_margin", "train_loss", "seconds"))

__all__ = ["SPEC"]
