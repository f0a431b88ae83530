"""Preference batches with the prompt computed once: ``[prompt | chosen | rejected]`` in one row.

TRL's DPOTrainer runs ``prompt + chosen`` and ``prompt + rejected`` as two padded sequences, so
every prompt token goes through the model twice (and padding with it). Here a pair is one row: the
rejected reply restarts its positions where the chosen one did (right after the prompt) and a 4D
attention mask lets each reply see the prompt and itself, never the other reply. The result is the
same two conditional log-probabilities, computed with the prompt once. Rows are length-sorted into
batches, so little padding is computed either (see :func:`plan_pair_batches`). The collator and
the mask also take several pairs per row (they never see each other).

Log-probabilities are computed only at reply positions: the LM head (49k wide on SmolLM2) never
runs on prompt tokens, and runs in chunks without holding the batch's logits
(:mod:`.fused_logps`). The first token of both replies is predicted by the last prompt token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..core.errors import ConfigError
from .batching import budget_batches
from .fused_logps import token_logps
from .preference import TokenizedPair

PROMPT, CHOSEN, REJECTED = 0, 1, 2


@dataclass
class PairBatch:
    input_ids: torch.Tensor      # (rows, width)
    position_ids: torch.Tensor   # (rows, width)
    segment: torch.Tensor        # (rows, width): which pair each token belongs to (-1-col for padding)
    part: torch.Tensor           # (rows, width): PROMPT / CHOSEN / REJECTED
    source: torch.Tensor         # (tokens,): flat index of the position predicting each reply token
    target: torch.Tensor         # (tokens,): the reply token
    slot: torch.Tensor           # (tokens,): pair i's chosen tokens -> i, its rejected tokens -> n + i
    n_pairs: int
    n_real: int                  # non-pad tokens
    lengths: torch.Tensor        # (2n,): reply lengths, chosen then rejected
    ends: torch.Tensor           # (2n,): flat index of each reply's last token (a reward model's pooling)
    pair_index: list[int]        # the example index of each pair, in slot order

    def to(self, device: torch.device | str) -> PairBatch:
        fields = {name: (value.to(device) if isinstance(value, torch.Tensor) else value)
                  for name, value in self.__dict__.items()}
        return PairBatch(**fields)

    def attention_mask(self, boolean: bool, dtype: torch.dtype) -> torch.Tensor:
        """(rows, 1, width, width): a query sees earlier keys of its own pair that are prompt or
        of its own reply. Padding tokens are pairs of their own, so they see only themselves."""
        seg, part = self.segment, self.part
        width = seg.shape[1]
        causal = torch.ones(width, width, dtype=torch.bool, device=seg.device).tril()
        same_pair = seg[:, :, None] == seg[:, None, :]
        visible_part = (part[:, None, :] == PROMPT) | (part[:, :, None] == part[:, None, :])
        allowed = (same_pair & visible_part & causal)[:, None]
        if boolean:
            return allowed
        return torch.zeros(allowed.shape, dtype=dtype, device=seg.device).masked_fill(
            ~allowed, torch.finfo(dtype).min)


def plan_pair_batches(examples: Sequence[TokenizedPair], batch_tokens: int, max_len: int,
                      seed: int) -> list[list[list[int]]]:
    """One epoch's batches: each pair a row of its own, pairs of similar length batched together
    under the token budget (rows x longest row), in a seeded order.

    A pair holds the prompt and both replies, so it can be up to 2 x max_len long. Rows are not
    packed with several pairs: the shared-prompt mask is not causal, so attention runs over the
    whole (width x width) square of a row, and a row of four packed pairs costs four times the
    attention of four rows of one (on SmolLM2 that is a quarter of the model's work at width 1024).
    Sorting by length keeps the padding of one-pair rows to a few tokens."""
    import random

    capacity = 2 * max_len
    if batch_tokens < capacity:
        raise ConfigError(f"{batch_tokens} is less than 2 x --max-len ({capacity}): a preference batch "
                          "must hold one pair (prompt + both replies)", "--batch-tokens")
    rng = random.Random(seed)
    rows = [[i] for i in range(len(examples))]
    rng.shuffle(rows)  # a random tie-break among equal lengths, another each epoch
    batches = budget_batches(rows, [len(examples[row[0]]) for row in rows], batch_tokens)
    rng.shuffle(batches)
    return batches


def collate_pairs(examples: Sequence[TokenizedPair], rows: list[list[int]], pad_id: int) -> PairBatch:
    pair_index = [i for row in rows for i in row]
    n = len(pair_index)
    slot_of = {index: k for k, index in enumerate(pair_index)}
    width = max(sum(len(examples[i]) for i in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    segment = torch.zeros((len(rows), width), dtype=torch.long)
    part = torch.zeros((len(rows), width), dtype=torch.long)
    source: list[int] = []
    target: list[int] = []
    slot: list[int] = []
    lengths = [0] * (2 * n)
    ends = [0] * (2 * n)
    n_real = 0
    for r, row in enumerate(rows):
        offset = 0
        for index in row:
            ex, k = examples[index], slot_of[index]
            p, c, rj = len(ex.prompt_ids), len(ex.chosen_ids), len(ex.rejected_ids)
            base = r * width + offset
            ids[r, offset:offset + p + c + rj] = torch.tensor(ex.prompt_ids + ex.chosen_ids + ex.rejected_ids)
            positions[r, offset:offset + p + c + rj] = torch.tensor(
                list(range(p + c)) + list(range(p, p + rj)))
            segment[r, offset:offset + p + c + rj] = k
            part[r, offset + p:offset + p + c] = CHOSEN
            part[r, offset + p + c:offset + p + c + rj] = REJECTED
            for start, reply, reply_slot in ((p, ex.chosen_ids, k), (p + c, ex.rejected_ids, n + k)):
                # token j of a reply is predicted by the one before it; token 0 by the last prompt token
                source += [base + p - 1] + [base + start + j - 1 for j in range(1, len(reply))]
                target += reply
                slot += [reply_slot] * len(reply)
                lengths[reply_slot] = len(reply)
                ends[reply_slot] = base + start + len(reply) - 1
            offset += p + c + rj
        n_real += offset
        pad = width - offset
        segment[r, offset:] = -1 - torch.arange(pad)  # each padding token a segment of its own
        positions[r, offset:] = 0
    return PairBatch(input_ids=ids, position_ids=positions, segment=segment, part=part,
                     source=torch.tensor(source), target=torch.tensor(target), slot=torch.tensor(slot),
                     n_pairs=n, n_real=n_real, lengths=torch.tensor(lengths, dtype=torch.float32),
                     ends=torch.tensor(ends), pair_index=pair_index)


def _boolean_mask_ok(model: Any) -> bool:
    impl = getattr(model.config, "_attn_implementation", None) or "eager"
    if impl.startswith("flash"):
        raise ConfigError("preference training packs pairs with a custom attention mask, which flash "
                          "attention cannot take; load the model with sdpa or eager attention", "--base-model")
    return impl != "eager"


def pair_hidden(base: Any, batch: PairBatch) -> torch.Tensor:
    """The decoder's last hidden states over the packed rows, flattened to (rows x width, hidden)."""
    dtype = next(base.parameters()).dtype
    mask = batch.attention_mask(_boolean_mask_ok(base), dtype)
    hidden = base.get_decoder()(input_ids=batch.input_ids, position_ids=batch.position_ids,
                                attention_mask=mask, use_cache=False).last_hidden_state
    return hidden.reshape(-1, hidden.shape[-1])


def pair_logps(model: Any, batch: PairBatch) -> torch.Tensor:
    """Summed log-probability of each reply: (2n,), pair i's chosen at i, its rejected at n + i."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    picked = pair_hidden(base, batch)[batch.source]
    head = base.get_output_embeddings()
    per_token = token_logps(picked, head.weight, batch.target, head.bias)
    return torch.zeros(2 * batch.n_pairs, dtype=per_token.dtype,
                       device=per_token.device).index_add(0, batch.slot, per_token)


def preference_loss(policy: torch.Tensor, reference: torch.Tensor, beta: float, loss_type: str,
                    lengths: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-pair DPO loss (TRL's formulas) and the rewards TRL logs, from (2n,) log-probs."""
    n = policy.shape[0] // 2
    chosen_ratio = policy[:n] - reference[:n]
    rejected_ratio = policy[n:] - reference[n:]
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * (chosen_ratio - rejected_ratio))
    elif loss_type == "ipo":  # TRL normalizes IPO's log-ratios by the reply lengths
        delta = chosen_ratio / lengths[:n].clamp(min=1) - rejected_ratio / lengths[n:].clamp(min=1)
        losses = (delta - 1 / (2 * beta)) ** 2
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * (chosen_ratio - rejected_ratio))
    else:
        raise ConfigError(f"unknown loss {loss_type!r}; choose sigmoid, ipo or hinge", "--loss")
    chosen_reward, rejected_reward = beta * chosen_ratio.detach(), beta * rejected_ratio.detach()
    stats = {"rewards/chosen": chosen_reward, "rewards/rejected": rejected_reward,
             "rewards/margins": chosen_reward - rejected_reward,
             "rewards/accuracies": (chosen_reward > rejected_reward).float(),
             "logps/chosen": policy[:n].detach(), "logps/rejected": policy[n:].detach()}
    return losses, stats
