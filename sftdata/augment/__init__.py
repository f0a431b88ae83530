"""The augment stage: Evol-Instruct evolution, paraphrase and rule-based variations of instructions.

    from sftdata.augment import AugmentConfig, augment
    summary = augment(AugmentConfig(ops=["constraints", "paraphrase"]), llm_config, ["in.jsonl"], "out/")
"""

from .api import augment
from .config import GROUPS, OPS, AugmentConfig

__all__ = ["augment", "AugmentConfig", "OPS", "GROUPS"]
