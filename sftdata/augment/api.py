"""``augment()``: the library entry point behind ``sftdata augment`` and the augment step of ``sftdata run``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.config import to_plain
from ..core.errors import ConfigError
from ..core.records import read_all
from ..core.rounds import run_stage
from ..core.rundir import RunDir
from ..llm.client import LLMConfig, make_llm
from .config import AugmentConfig
from .stage import AugmentStage


def augment(config: AugmentConfig, llm_config: LLMConfig, in_paths: Sequence[str | os.PathLike[str]],
            out_dir: str | os.PathLike[str], fresh: bool = False, progress: bool = True) -> dict[str, Any]:
    """Augment the records of ``in_paths`` into ``out_dir``; returns the summary (as in stats.json).

    ``out_dir/accepted.jsonl`` holds the new records only. Raises ConfigError / DataError on bad
    settings or input (before anything is written), BudgetExhausted when the budget stops the run.
    """
    config.validate()
    llm_config.validate()
    if not in_paths:
        raise ConfigError("give at least one input file", "INPUTS")
    keywords = config.keyword_list() if "rule:keywords" in config.resolved_ops() else []
    inputs = read_all(in_paths)  # every bad line fails here, before the run directory is touched
    rundir = RunDir(out_dir, fresh=fresh)
    llm = make_llm(llm_config, rundir)
    stage = AugmentStage(config, inputs, keywords)
    digest = hashlib.sha256("\n".join(r.id for r in inputs).encode()).hexdigest()[:16]
    run_config = {
        "stage": "augment",
        "inputs": [str(Path(p).resolve()) for p in in_paths],
        "input_digest": digest,
        "augment": {**to_plain(config), "ops": config.resolved_ops(), "keywords": keywords},
        "llm": llm_config.public(),
    }
    return run_stage(stage, rundir, llm, run_config, progress=progress, desc="augment")
