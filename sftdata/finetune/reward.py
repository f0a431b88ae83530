"""``--method reward``: a reward model (sequence-classification head + LoRA, Bradley-Terry loss),
and :func:`score_with_reward_model`, which scores records with one.

The model is the base loaded as ``AutoModelForSequenceClassification`` (one label: a scalar score
read at the reply's last token, its end-of-turn), the head trained in full and the decoder through
LoRA (peft's SEQ_CLS task saves the head with the adapter). Pairs are batched like DPO's, the
prompt computed once per pair; the loss is TRL RewardTrainer's ``-logsigmoid(r_chosen - r_rejected)``
and the held-out metric is preference accuracy (how often the chosen reply scores higher).

Scoring renders a record as the same conversation (system, user = instruction [+ input],
assistant = output) and reads the score at the end of the reply, as training did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..core.errors import ConfigError
from ..core.records import Record
from .config import FinetuneConfig
from .pair_batching import PairBatch, pair_hidden
from .pair_train import train_pairs
from .preference import PreferencePair, tokenize_pair

REWARD_KEY = "reward"  # records scored by a reward model carry meta.judge.reward


def load_reward_base(base_model: str | None, dtype: torch.dtype) -> tuple[Any, Any, str]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..llm.local.embedded import resolve_model_dir

    directory = resolve_model_dir(base_model)
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(directory, num_labels=1, dtype=dtype,
                                                               local_files_only=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, str(Path(directory).resolve())


def _lora_seq_cls(model: Any, config: FinetuneConfig) -> Any:
    import peft

    options = config.method_options()
    options.validate()
    lora = peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=options.lora_r, lora_alpha=options.lora_alpha,
                           lora_dropout=options.lora_dropout, target_modules=options.targets())
    try:
        return peft.get_peft_model(model, lora)
    except ValueError as exc:
        raise ConfigError(str(exc), "--target-modules") from None


def reply_rewards(model: Any, batch: PairBatch) -> torch.Tensor:
    """The score at the end of each reply: (2n,), chosen then rejected."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = pair_hidden(base, batch)[batch.ends]
    return base.score(hidden).float().squeeze(-1)


class RewardObjective:
    name = "reward"
    stat_keys = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")
    summary_keys = {"eval_accuracy": "rewards/accuracies", "eval_margin": "rewards/margins"}

    def load(self, config: FinetuneConfig, dtype: torch.dtype) -> tuple[Any, Any, str]:
        model, tokenizer, base_dir = load_reward_base(config.base_model, dtype)
        return _lora_seq_cls(model, config), tokenizer, base_dir

    def prepare(self, *args: Any) -> None:
        return None

    def losses(self, model: Any, batch: PairBatch, prepared: None, config: FinetuneConfig,
               device: torch.device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rewards = reply_rewards(model, batch)
        n = batch.n_pairs
        chosen, rejected_ = rewards[:n], rewards[n:]
        losses = -F.logsigmoid(chosen - rejected_)  # Bradley-Terry
        stats = {"rewards/chosen": chosen.detach(), "rewards/rejected": rejected_.detach(),
                 "rewards/margins": (chosen - rejected_).detach(),
                 "rewards/accuracies": (chosen > rejected_).float().detach()}
        return losses, stats

    def info(self, config: FinetuneConfig) -> dict[str, Any]:
        return {"loss_type": "bradley-terry"}


def train_reward(config: FinetuneConfig) -> dict[str, Any]:
    return train_pairs(config, RewardObjective())


# ---------------------------------------------------------------- scoring with a trained reward model

def load_reward_model(model_dir: str | Path) -> tuple[Any, Any]:
    """(reward model in eval mode, tokenizer) from a ``--method reward`` output directory."""
    from peft import PeftModel

    from .outputs import read_info, trained_tokenizer

    info = read_info(model_dir)
    if info.get("method") != "reward":
        raise ConfigError(f"{model_dir} is not a reward model written by `sftdata finetune --method reward` "
                          "(its sftdata_finetune.json says method "
                          f"{info.get('method')!r})", "--reward-model")
    base, tokenizer, _ = load_reward_base(info.get("base_model_dir") or info.get("base_model"), torch.float32)
    tokenizer = trained_tokenizer(model_dir, tokenizer)
    model = PeftModel.from_pretrained(base, str(model_dir), is_trainable=False).eval()
    return model, tokenizer


def _record_pair(record: Record) -> PreferencePair:
    prompt = []
    if isinstance(record.meta, dict) and record.meta.get("system"):
        prompt.append({"role": "system", "content": record.meta["system"]})
    prompt.append({"role": "user", "content": record.instruction + ("\n\n" + record.input if record.input else "")})
    return PreferencePair(prompt=prompt, chosen=record.output, rejected=record.output)


def score_replies(model: Any, tokenizer: Any, pairs: Sequence[PreferencePair], max_len: int = 1024,
                  batch_tokens: int = 8192) -> list[float]:
    """The reward of each pair's ``chosen`` reply (None-free: a reply too long is cut from the prompt)."""
    from .pair_batching import collate_pairs, plan_pair_batches
    from .preference import TokenizedPair

    examples = []
    for pair in pairs:
        tokenized = tokenize_pair(tokenizer, pair, max_len)
        if tokenized is None:  # the reply alone fills max_len: score its last max_len tokens
            full = tokenize_pair(tokenizer, pair, 10 ** 9)
            assert full is not None
            tokenized = TokenizedPair(full.prompt_ids[:1], full.chosen_ids[-(max_len - 1):], full.chosen_ids[-1:])
        # score the reply alone: the "rejected" slot gets a one-token stub, never read
        examples.append(TokenizedPair(tokenized.prompt_ids, tokenized.chosen_ids, tokenized.chosen_ids[-1:]))
    scores = [0.0] * len(examples)
    with torch.no_grad():
        for rows in plan_pair_batches(examples, max(batch_tokens, 2 * max_len), max_len, seed=0):
            batch = collate_pairs(examples, rows, tokenizer.pad_token_id)
            rewards = reply_rewards(model, batch)
            for slot, index in enumerate(batch.pair_index):
                scores[index] = float(rewards[slot])
    return scores


def score_with_reward_model(records: Iterable[Record], model_dir: str | Path, max_len: int = 1024) -> list[Record]:
    """Each record with ``meta.judge.reward`` set to the reward model's score of its output."""
    records = list(records)
    model, tokenizer = load_reward_model(model_dir)
    scores = score_replies(model, tokenizer, [_record_pair(r) for r in records], max_len)
    for record, score in zip(records, scores):
        judge = record.meta.get("judge") if isinstance(record.meta.get("judge"), dict) else {}
        record.meta["judge"] = {**judge, REWARD_KEY: round(score, 6), "reward_model": str(model_dir)}
    return records
