"""Batches under a token budget: packed rows, or length-grouped padded rows.

Packing puts several examples in one row of at most ``max_len`` tokens, and a batch's rows are
then joined into one row with no padding (padding-free, as TRL's ``padding_free``). Each example
keeps its own ``position_ids`` (restarting at 0) and its span in ``segments``; no attention mask
is passed. The training loop attends per span (:mod:`.packed_attention`); any other caller gets
transformers' reading of the restarts as packed sequences (a block-diagonal 4D mask for
sdpa/eager, varlen kernels for flash-attention). Targets are shifted *per example*, so the last
token of one example never predicts the first token of the next.

Without packing, examples of similar length share a batch (little padding), padded on the right
with an attention mask built from the lengths.

A batch holds at most ``batch_tokens`` tokens counting padding (rows x longest row): the budget,
not a row count, bounds memory. Joined packed rows hold at most as many.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .config import check_budget
from .data import IGNORE, TokenizedExample


@dataclass
class Batch:
    input_ids: torch.Tensor              # (rows, length)
    targets: torch.Tensor                # next-token targets, already shifted; IGNORE where not trained
    position_ids: torch.Tensor
    attention_mask: torch.Tensor | None  # None for packed rows (block-diagonal from position_ids)
    n_trainable: int                     # targets != IGNORE
    n_real: int                          # non-pad tokens
    segments: list[tuple[int, int]] | None = None  # packed: each example's [start, end) in the one row

    def to(self, device: torch.device | str) -> Batch:
        move = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return Batch(move(self.input_ids), move(self.targets), move(self.position_ids),
                     move(self.attention_mask), self.n_trainable, self.n_real, self.segments)


# ---------------------------------------------------------------- grouping

def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing: example indices per row, each row's total length <= capacity.

    Each example (longest first) goes to the first row with room for it, else opens a row. The
    first such row is found in O(log n) by descending a max segment tree over the rows' free space
    rather than by scanning every open row.
    """
    leaves = 1
    while leaves < len(lengths):
        leaves *= 2
    # node k holds the most free space of any row under it (children 2k, 2k + 1; row r is leaf
    # leaves + r); rows not yet opened hold -inf, so only open rows are ever found
    most_free: list[float] = [-math.inf] * (2 * leaves)
    rows: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        size = lengths[index]
        if most_free[1] >= size:
            node = 1
            while node < leaves:  # the leftmost child with room: the first row that fits
                node = 2 * node if most_free[2 * node] >= size else 2 * node + 1
            rows[node - leaves].append(index)
            most_free[node] -= size
        else:
            node = leaves + len(rows)
            rows.append([index])
            most_free[node] = capacity - size
        node //= 2
        while node:
            most_free[node] = max(most_free[2 * node], most_free[2 * node + 1])
            node //= 2
    return rows


def budget_batches(rows: list[list[int]], row_len: Sequence[int], batch_tokens: int) -> list[list[list[int]]]:
    """Group rows (similar lengths next to each other) so rows x longest row <= batch_tokens."""
    order = sorted(range(len(rows)), key=lambda r: row_len[r])
    batches: list[list[list[int]]] = []
    current: list[list[int]] = []
    longest = 0
    for r in order:
        longest_if_added = max(longest, row_len[r])
        if current and longest_if_added * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest_if_added = [], row_len[r]
        current.append(rows[r])
        longest = longest_if_added
    if current:
        batches.append(current)
    return batches


def plan_batches(examples: Sequence[TokenizedExample], batch_tokens: int, max_len: int,
                 packing: bool, seed: int) -> list[list[list[int]]]:
    """One epoch's batches (lists of rows, a row a list of example indices), in a seeded order."""
    check_budget(batch_tokens, max_len)
    lengths = [len(e) for e in examples]
    rng = random.Random(seed)
    if packing:
        # shuffle first so equal-length examples are packed with different partners each epoch
        shuffled = list(range(len(examples)))
        rng.shuffle(shuffled)
        rows = [[shuffled[i] for i in row] for row in pack_rows([lengths[i] for i in shuffled], max_len)]
    else:
        rows = [[i] for i in range(len(examples))]
        rng.shuffle(rows)  # random tie-break among equal lengths
    row_len = [sum(lengths[i] for i in row) for row in rows]
    batches = budget_batches(rows, row_len, batch_tokens)
    rng.shuffle(batches)
    return batches


# ---------------------------------------------------------------- tensors

def collate(examples: Sequence[TokenizedExample], rows: list[list[int]], pad_id: int,
            packed: bool) -> Batch:
    """Tensors for one batch: packed rows joined into one, else one padded row per example list.
    Masks come from lengths; the pad id is only filler."""
    if packed:
        ids, targets, positions, segments = _end_to_end(examples, [index for row in rows for index in row])
        target_tensor = torch.tensor([targets])
        return Batch(input_ids=torch.tensor([ids]), targets=target_tensor, position_ids=torch.tensor([positions]),
                     attention_mask=None, n_trainable=int((target_tensor != IGNORE).sum()), n_real=len(ids),
                     segments=segments)
    row_ids, row_targets, row_pos, _ = zip(*(_end_to_end(examples, row) for row in rows))
    width = max(len(ids) for ids in row_ids)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    targets = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (ids, tgt, pos) in enumerate(zip(row_ids, row_targets, row_pos)):
        n = len(ids)
        input_ids[r, :n] = torch.tensor(ids)
        targets[r, :n] = torch.tensor(tgt)
        # padding is a segment of its own (positions restart at 0): it attends only to itself
        position_ids[r] = torch.tensor(pos + list(range(width - n)))
        attention_mask[r, :n] = 1
    n_trainable = int((targets != IGNORE).sum())
    n_real = int(attention_mask.sum())
    return Batch(input_ids=input_ids, targets=targets, position_ids=position_ids,
                 attention_mask=attention_mask, n_trainable=n_trainable, n_real=n_real)


def _end_to_end(examples: Sequence[TokenizedExample],
                order: list[int]) -> tuple[list[int], list[int], list[int], list[tuple[int, int]]]:
    """(ids, targets, positions, spans) of the examples end to end: positions restart and targets
    are shifted per example."""
    ids: list[int] = []
    targets: list[int] = []
    positions: list[int] = []
    spans: list[tuple[int, int]] = []
    for index in order:
        example = examples[index]
        spans.append((len(ids), len(ids) + len(example.input_ids)))
        ids += example.input_ids
        targets += example.labels[1:] + [IGNORE]  # shift inside the example
        positions += range(len(example.input_ids))
    return ids, targets, positions, spans
