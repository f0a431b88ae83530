"""``sftdata eval PAIRS``: how well the base, each adapter and each reward model order held-out pairs.

For a language model (the base, an SFT or a DPO adapter), per pair:

* ``logp_accuracy``: the chosen reply has the higher summed log-probability; ``logp_margin`` its mean
  difference (length-biased: a shorter reply is favoured);
* ``avg_logp_accuracy``: the same with log-probabilities per token (length-normalized);
* ``reward_accuracy`` / ``reward_margin`` (adapters only): DPO's implicit reward
  ``beta * (log pi - log pi_base)``, chosen minus rejected, with the base as the reference: what
  ``rewards/accuracies`` and ``rewards/margins`` were during DPO training, on pairs it never saw.

For a reward model (``--reward-model``): ``reward_accuracy`` (r(chosen) > r(rejected)) and
``reward_margin`` (mean r(chosen) - r(rejected)). Pairs are batched with the prompt computed once
(:mod:`sftdata.finetune.pair_batching`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.records import iter_json_lines


def is_preference_file(path: str | os.PathLike[str]) -> bool:
    """True when the first row of ``path`` is a preference pair (it has chosen and rejected)."""
    for _, obj in iter_json_lines(path):
        return isinstance(obj, dict) and "chosen" in obj and "rejected" in obj
    return False


def _logps(model: Any, tokenizer: Any, pairs: Sequence[Any], max_len: int, batch_tokens: int) -> tuple[Any, Any]:
    """(2, n) summed log-probs (chosen, rejected) and (2, n) reply lengths."""
    import torch

    from ..finetune.pair_batching import collate_pairs, pair_logps, plan_pair_batches
    from ..finetune.preference import tokenize_pairs

    report = tokenize_pairs(tokenizer, pairs, max_len)
    if len(report.examples) != len(pairs):
        raise ConfigError(f"{len(pairs) - len(report.examples)} pairs do not fit --max-len {max_len}", "--max-len")
    examples = report.examples
    logps = torch.zeros(2, len(examples), dtype=torch.float64)
    lengths = torch.tensor([[len(e.chosen_ids) for e in examples], [len(e.rejected_ids) for e in examples]],
                           dtype=torch.float64)
    with torch.no_grad():
        for rows in plan_pair_batches(examples, max(batch_tokens, 2 * max_len), max_len, seed=0):
            batch = collate_pairs(examples, rows, tokenizer.pad_token_id)
            values = pair_logps(model, batch).double()
            index = torch.tensor(batch.pair_index)
            logps[0, index], logps[1, index] = values[:batch.n_pairs], values[batch.n_pairs:]
    return logps, lengths


def _accuracy(delta: Any) -> float:
    return round(float((delta > 0).double().mean()), 4)


def evaluate_preferences(data: Sequence[str], base_model: str | None = None, adapters: Sequence[str] = (),
                         reward_models: Sequence[str] = (), beta: float = 0.1, max_len: int = 1024,
                         batch_tokens: int = 8192, limit: int | None = None,
                         log: Callable[[str], None] | None = None) -> dict[str, Any]:
    from ..finetune.data import prepare_tokenizer
    from ..finetune.outputs import trained_tokenizer
    from ..finetune.preference import load_pairs
    from ..finetune.reward import load_reward_model, score_replies
    from ..llm.local.embedded import load_model_and_tokenizer
    from .stage import _labels, resolve_base_model

    pairs = load_pairs(data)[:limit] if limit else load_pairs(data)
    if not pairs:
        raise ConfigError("no pairs to evaluate on", "DATA")
    lm_adapters = list(adapters)
    base_model = resolve_base_model(base_model, lm_adapters, log)
    models: list[dict[str, Any]] = []
    base_logps = None
    for label, adapter in [("base", None), *zip(_labels(lm_adapters), lm_adapters)]:
        if log:
            log(f"evaluating {label} on {len(pairs)} pairs")
        model, tokenizer = load_model_and_tokenizer(base_model, adapter=adapter)
        tokenizer = trained_tokenizer(adapter, tokenizer) if adapter else tokenizer
        prepare_tokenizer(tokenizer)
        logps, lengths = _logps(model, tokenizer, pairs, max_len, batch_tokens)
        result: dict[str, Any] = {
            "label": label, "kind": "language model", "adapter": adapter,
            "logp_accuracy": _accuracy(logps[0] - logps[1]),
            "logp_margin": round(float((logps[0] - logps[1]).mean()), 4),
            "avg_logp_accuracy": _accuracy(logps[0] / lengths[0] - logps[1] / lengths[1]),
        }
        if base_logps is None:
            base_logps = logps
        else:
            rewards = beta * ((logps[0] - base_logps[0]) - (logps[1] - base_logps[1]))
            result["reward_accuracy"] = _accuracy(rewards)
            result["reward_margin"] = round(float(rewards.mean()), 4)
        models.append(result)
    for directory in reward_models:
        if log:
            log(f"evaluating reward model {directory} on {len(pairs)} pairs")
        model, tokenizer = load_reward_model(directory)
        from ..finetune.preference import PreferencePair

        chosen = score_replies(model, tokenizer, pairs, max_len, batch_tokens)
        rejected = score_replies(model, tokenizer, [PreferencePair(p.prompt, p.rejected, p.rejected) for p in pairs],
                                 max_len, batch_tokens)
        deltas = [c - r for c, r in zip(chosen, rejected)]
        models.append({"label": Path(directory).name, "kind": "reward model", "adapter": directory,
                       "reward_accuracy": round(sum(d > 0 for d in deltas) / len(deltas), 4),
                       "reward_margin": round(sum(deltas) / len(deltas), 4)})
    return {"data": [str(p) for p in data], "pairs": len(pairs), "beta": beta, "models": models}


COLUMNS = ("logp_accuracy", "avg_logp_accuracy", "logp_margin", "reward_accuracy", "reward_margin")


def render_preference_table(report: dict[str, Any]) -> str:
    header = ["model", *COLUMNS]
    rows = [[m["label"], *("-" if m.get(c) is None else f"{m[c]:.4g}" for c in COLUMNS)] for m in report["models"]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_preference_outputs(report: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, str]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "eval.md").write_text(f"# Preference evaluation ({report['pairs']} pairs)\n\n"
                                 + render_preference_table(report) + "\n", encoding="utf-8")
    return {"eval.json": str(out / "eval.json"), "eval.md": str(out / "eval.md")}
