"""The eval stage: held-out loss and generation metrics, the base model beside each adapter.

    config   EvalConfig
    stage    evaluate(data, base_model, adapters, options) and its outputs (eval.json, eval.md, predictions)
    metrics  ROUGE-L, exact match, classification P/R/F1
    preference  preference accuracy / margin of base, adapters and reward models on pairs
"""

from ..core.stage import StageSpec
from .config import EvalConfig
from .step import run

SPEC = StageSpec("eval", EvalConfig, run, produces_data=False, reads=("export", "finetune", "pairs", "dpo"),
                 help="held-out loss, generation metrics, base vs adapters")
