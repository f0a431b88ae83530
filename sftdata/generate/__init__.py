"""Grow a task pool from seed tasks: Self-Instruct's four steps, or Alpaca's one pass.

    from sftdata.generate import GenerateConfig, generate
    summary = generate(GenerateConfig(num_instructions=100), LLMConfig(), "runs/demo")

Re-running with the same directory resumes; ``fresh=True`` starts over.
"""

from ..core.stage import StageSpec
from .api import generate
from .config import GenerateConfig, SeedTask, load_seeds
from .step import estimate, run

__all__ = ["GenerateConfig", "SeedTask", "generate", "load_seeds", "SPEC"]

SPEC = StageSpec("generate", GenerateConfig, run, uses_llm=True, estimate=estimate,
                 help="Self-Instruct / Alpaca bootstrap from seed tasks")
