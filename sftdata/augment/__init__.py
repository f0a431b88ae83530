"""The augment stage: Evol-Instruct evolution, paraphrase and rule-based variations of instructions.

    from sftdata.augment import AugmentConfig, augment
    summary = augment(AugmentConfig(ops=["constraints", "paraphrase"]), llm_config, ["in.jsonl"], "out/")
"""

from ..core.lazy import lazy_names
from ..core.stage import StageSpec
from .config import GROUPS, OPS, AugmentConfig
from .step import estimate, run

__all__ = ["augment", "AugmentConfig", "OPS", "GROUPS", "SPEC"]
# the library function loads on first use: its modules bring the LLM client, the filters and the patterns
__getattr__, __dir__ = lazy_names(__name__, {"augment": ".api"})

SPEC = StageSpec("augment", AugmentConfig, run, uses_llm=True, estimate=estimate,
                 help="Evol-Instruct evolution, paraphrase, rule-based variations")
