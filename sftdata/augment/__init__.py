"""The augment stage: Evol-Instruct evolution, paraphrase and rule-based variations of instructions.

    from sftdata.augment import AugmentConfig, augment
    summary = augment(AugmentConfig(ops=["constraints", "paraphrase"]), llm_config, ["in.jsonl"], "out/")
"""

from ..core.stage import StageSpec
from .api import augment
from .config import GROUPS, OPS, AugmentConfig
from .step import estimate, run

__all__ = ["augment", "AugmentConfig", "OPS", "GROUPS", "SPEC"]

SPEC = StageSpec("augment", AugmentConfig, run, uses_llm=True, estimate=estimate,
                 help="Evol-Instruct evolution, paraphrase, rule-based variations")
