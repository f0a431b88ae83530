"""``sftdata judge --reward-model DIR``: score records with a trained reward model instead of an LLM.

The reward model is a ``sftdata finetune --method reward`` directory; each record's output gets
``meta.judge.reward`` (:func:`sftdata.finetune.reward.score_with_reward_model`), which
``sftdata pairs --rank-by meta`` and ``sftdata select --min-score`` read like an LLM judge's score. No
request is sent; the records are written in input order, none dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.records import read_all, write_jsonl


def reward_files(in_paths: Sequence[str | os.PathLike[str]], model_dir: str | os.PathLike[str],
                 out_dir: str | os.PathLike[str], *, limit: int | None = None, max_len: int = 1024) -> dict[str, Any]:
    """Score the records of ``in_paths`` into ``out_dir/accepted.jsonl`` (+ ``stats.json``); the summary."""
    from ..finetune.reward import REWARD_KEY, score_with_reward_model

    if not Path(model_dir).is_dir():
        raise ConfigError(f"no such directory: {model_dir}", "--reward-model")
    records = read_all(in_paths) if in_paths else []
    if not records:
        raise ConfigError("give at least one input file with records", "INPUTS")
    records = records[:limit] if limit else records
    scored = score_with_reward_model(records, model_dir, max_len=max_len)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "accepted.jsonl", [r.to_dict() for r in scored])
    rewards = [r.meta["judge"][REWARD_KEY] for r in scored]
    summary = {"records": len(scored), "judged": len(scored), "reward_model": str(model_dir),
               "mean_reward": round(sum(rewards) / len(rewards), 6), "min_reward": min(rewards),
               "max_reward": max(rewards), "out": str(out)}
    (out / "stats.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
