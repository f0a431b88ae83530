"""The pairs stage: preference pairs (prompt, chosen, rejected, margin, provenance) from ranked candidates.

    config.py   PairsConfig (setting() fields)
    estimate.py what it asks of the LLM, for `sftdata run --dry-run`
    build.py    ranked candidates -> pairs; ties and low margins -> rejected rows with the reason
    step.py     run(ctx, config): the stage in `sftdata run` (the base's and the SFT adapter's answers)
    stage.py    candidates (records, LLM samples, other models, adapters), ranking (judge scores, pairwise,
                reward model, meta.judge, human feedback.jsonl), pairs.jsonl + rejected.jsonl + exports

Importing this package stays cheap (no torch); the run function imports what it needs.
"""

from __future__ import annotations

from ..core.stage import StageSpec
from .config import PairsConfig
from .estimate import estimate
from .step import run

SPEC = StageSpec(name="pairs", config=PairsConfig, run=run, uses_llm=True, produces_data=False, estimate=estimate,
                 reads=("finetune",), enabled_by_default=False,
                 help="preference pairs: candidates per instruction ranked by the judge, a reward model or people",
                 summary_keys=("prompts", "pairs", "rejected", "candidates_added"))

__all__ = ["SPEC", "PairsConfig"]
