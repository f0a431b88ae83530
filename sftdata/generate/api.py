"""generate(config, llm_config, out_dir): run (or resume) the generate stage into a run directory."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.rounds import run_stage
from ..core.rundir import RunDir
from ..core.settings import resumable
from ..llm.client import LLMConfig, make_llm
from .config import GenerateConfig, load_seeds


def generate(config: GenerateConfig, llm_config: LLMConfig, out_dir: str | os.PathLike[str], *,
             fresh: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the generate stage into ``out_dir``; returns the summary also in stats.json.

    Raises ConfigError / DataError for bad settings or seed files before anything is sent,
    EndpointUnavailable when the endpoint stays down, BudgetExhausted at ``--max-requests`` /
    ``--max-cost`` (state saved: raise the budget and re-run).
    """
    from .alpaca import AlpacaStage
    from .self_instruct import SelfInstructStage

    config.validate()
    llm_config.validate()
    seeds, lang, files = load_seeds(config.seeds, config.lang)
    # the resolved language and absolute seed paths: a resume from another directory is the same run
    config = replace(config, lang=lang, seeds=[str(Path(f).resolve()) for f in files])
    stage_cls = SelfInstructStage if config.mode == "self-instruct" else AlpacaStage
    stage = stage_cls(config, seeds, lang)
    rundir = RunDir(out_dir, fresh=fresh)
    run_config = {"stage": "generate", "generate": config.public(),
                  "llm": llm_config.public()}
    llm = make_llm(llm_config, rundir)
    return run_stage(stage, rundir, llm, run_config, progress=progress, desc=f"generate ({config.mode}, {lang})",
                     resumable_keys=resumable(GenerateConfig))
