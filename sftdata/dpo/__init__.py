"""The dpo stage of ``sftdata run``: ``finetune --method dpo`` on the pairs stage's export, on top of
the finetune stage's SFT adapter (its reference).

    config.py   DpoConfig: FinetuneConfig with the method set by the pipeline
    step.py     run(ctx, config): the pairs export's splits, the SFT adapter as reference, resume

The training itself is :mod:`sftdata.finetune.dpo` (``sftdata finetune --method dpo``); importing this
package stays cheap (no torch).
"""

from __future__ import annotations

from ..core.stage import StageSpec
from .config import DpoConfig
from .step import run

SPEC = StageSpec(name="dpo", config=DpoConfig, run=run, produces_data=False, reads=("finetune", "pairs"),
                 enabled_by_default=False,
                 help="DPO of a LoRA adapter on the pairs stage's export, the SFT adapter as reference",
                 summary_keys=("pairs", "eval_accuracy", "eval_margin", "train_loss", "seconds"))

__all__ = ["SPEC", "DpoConfig"]
