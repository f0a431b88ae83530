"""The dpo stage as a step of ``sftdata run``: ``finetune --method dpo`` on the pairs stage's export,
starting from (and referenced to) the finetune stage's SFT adapter, on the same base model."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..core.errors import ConfigError
from ..core.stage import StageContext, StageResult
from ..pairs.step import pairs_split


def base_model_of(ctx: StageContext, config: Any) -> str | None:
    """The dpo stage's base: its own base_model, else the finetune stage's (whose adapter is the
    reference), else the run's local llm.model (as the finetune stage does), else the embedded model."""
    if config.base_model is not None:
        return config.base_model
    finetune = ctx.config_of("finetune")
    if finetune is not None and finetune.base_model is not None:
        return finetune.base_model
    llm = ctx.llm_config()
    return llm.model if llm.model and not llm.base_urls else None


def run(ctx: StageContext, config: Any) -> StageResult:
    from ..finetune.train import finetune

    pairs = ctx.output_of("pairs")
    train = pairs_split(pairs[0], "train") if pairs else None
    if train is None:
        raise ConfigError("the dpo stage trains on the pairs stage's export: add a `pairs:` section "
                          "(its train split is missing or empty)", "dpo")
    validation = pairs_split(pairs[0], "validation")
    finetuned = ctx.output_of("finetune")
    # the run directory keeps an interrupted stage (same hash): continue from its checkpoint
    resume = (ctx.out / "checkpoint" / "state.pt").is_file()
    config = dataclasses.replace(config, method="dpo", data=[str(train)], out=str(ctx.out), progress=ctx.progress,
                                 eval_data=[str(validation)] if validation else [],
                                 ref_adapter=config.ref_adapter or (str(finetuned[0]) if finetuned else None),
                                 base_model=base_model_of(ctx, config), resume=resume)
    return StageResult([ctx.out], finetune(config))
