"""Grow a task pool from seed tasks: Self-Instruct's four steps, or Alpaca's one pass.

    from sftdata.generate import GenerateConfig, generate
    summary = generate(GenerateConfig(num_instructions=100), LLMConfig(), "runs/demo")

Re-running with the same directory resumes; ``fresh=True`` starts over.
"""

from ..core.lazy import lazy_names
from ..core.stage import StageSpec
from .config import GenerateConfig, SeedTask, load_seeds
from .step import estimate, run

__all__ = ["GenerateConfig", "SeedTask", "generate", "language_warning", "load_seeds", "SPEC"]
# the library functions load on first use: their modules bring the LLM client and the filters
__getattr__, __dir__ = lazy_names(__name__, {"generate": ".api", "language_warning": ".api"})

SPEC = StageSpec("generate", GenerateConfig, run, uses_llm=True, estimate=estimate,
                 help="Self-Instruct / Alpaca bootstrap from seed tasks")
