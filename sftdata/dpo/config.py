"""The dpo stage's settings: fine-tuning's, with the method fixed to dpo by the pipeline (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.settings import setting
from ..finetune.config import FinetuneConfig


@dataclass
class DpoConfig(FinetuneConfig):
    """``finetune --method dpo`` as the ``dpo:`` section of ``sftdata run``: every fine-tuning setting
    (``beta``, ``loss``, ``lr``, ``epochs``, ...) except the method, which the stage sets."""

    method: str = setting("dpo", by_pipeline=True, cli=False, choices=("dpo",),
                          help="dpo: a LoRA policy trained on the pairs stage's export.")
