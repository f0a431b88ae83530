"""The fine-tune stage as a step of ``sftdata run``: trains on the export's train split."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..core.errors import ConfigError
from ..core.stage import StageContext, StageResult


def run(ctx: StageContext, config: Any) -> StageResult:
    from ..export.step import exported_file
    from .train import finetune

    if config.preference:  # the export holds SFT records, not pairs
        raise ConfigError(f"{config.method} trains on preference pairs: use the pairs and dpo stages "
                          "(`pairs: {}`, `dpo: {}`) after an SFT method here", "finetune.method")

    export_dir = ctx.run_dir / "export"
    eval_data = []
    try:
        eval_data = [str(exported_file(export_dir, "validation"))]
    except FileNotFoundError:
        pass
    config = dataclasses.replace(config, data=[str(exported_file(export_dir, "train"))], out=str(ctx.out),
                                 eval_data=eval_data, progress=ctx.progress)
    llm = ctx.llm_config()
    if llm.model and not llm.base_urls and config.base_model is None:  # a local model is the base
        config = dataclasses.replace(config, base_model=llm.model)
    return StageResult([ctx.out], finetune(config))
