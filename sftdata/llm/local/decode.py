"""The decode state of the local engine: the rows generating together and one step of all of them.

A :class:`Batch` holds, for the rows being decoded, their KV cache (:mod:`sftdata.llm.local.kv_cache`),
attention mask, next positions and tokens, and per-row sampling parameters. A row is done the step
it finishes; its tensors are dropped in bulk once enough rows are done (each drop copies the cache).
New rows join after their prefill, their cache left-padded to the batch's width: that is how the
engine keeps the batch full (continuous batching).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..base import Request
from .sampling import DEFAULT_TOP_K, sample, uniforms

if TYPE_CHECKING:
    from .engine import Engine

DROP_FRACTION = 8  # finished rows are dropped once they are 1/8 of the batch


@dataclass
class Row:
    """One request being generated."""

    index: int  # position in the caller's request list
    request: Request
    prompt: list[int]
    seed: int
    max_new: int
    generated: list[int] = field(default_factory=list)
    finish: str | None = None
    stop_window: int = 0  # tokens whose text can hold a whole stop string


class Batch:
    """The rows being decoded together: their KV cache, attention mask, next positions and tokens."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rows: list[Row] = []
        self.cache: Any = None  # a kv_cache.GrowingCache (or its transformers variant)
        self.mask: Any = None  # [B, T] bool: True for real tokens, False for left padding
        self.positions: Any = None  # [B] the position of the token fed next
        self.tokens: Any = None  # [B] the token fed next (the last one sampled)
        self.params: Params | None = None
        self.steps = np.zeros(0, dtype=np.int64)  # [B] decoding step of each row (for its random draws)
        self.dead = 0  # finished rows still in the tensors (dropped in bulk: each drop copies the cache)

    @property
    def live(self) -> int:
        return len(self.rows) - self.dead

    def admit(self, rows: list[Row]) -> Iterator[Row]:
        """Prefill ``rows``, sample their first token, and merge those still running into the batch."""
        engine = self.engine
        cache, ids, mask, positions = engine.prefill_inputs(rows)
        params = Params.of(rows)
        logits = engine.forward(ids, mask, positions, cache)
        tokens = sample_next(engine, logits, params, np.zeros(len(rows), dtype=np.int64))
        keep = []
        for i, (row, token) in enumerate(zip(rows, tokens.tolist())):
            if engine.check_finished(row, token):
                yield row
            else:
                keep.append(i)
        if not keep:
            return
        index = torch.tensor(keep)
        if len(keep) < len(rows):
            cache.batch_select_indices(index)
        new_rows = [rows[i] for i in keep]
        next_positions = positions[index, -1] + 1
        self._merge(new_rows, cache, mask[index], next_positions, tokens[index], params.select(keep))

    def _merge(self, rows: list[Row], cache: Any, mask: Any, positions: Any, tokens: Any,
               params: Params) -> None:
        if not self.rows:
            self.rows, self.cache, self.mask = rows, cache, mask
            self.positions, self.tokens, self.params = positions, tokens, params
            self.steps = np.ones(len(rows), dtype=np.int64)
            return
        width = max(self.mask.shape[1], mask.shape[1])
        self.mask = torch.cat([left_pad(self.mask, width), left_pad(mask, width)])
        for mine, theirs in zip(self.cache.layers, cache.layers):
            mine.extend_batch(theirs, width)
        self.rows = self.rows + rows
        self.positions = torch.cat([self.positions, positions])
        self.tokens = torch.cat([self.tokens, tokens])
        self.params = self.params.concat(params)
        self.steps = np.concatenate([self.steps, np.ones(len(rows), dtype=np.int64)])

    def step(self) -> Iterator[Row]:
        """Feed every row its last token, sample the next; yield the rows that finished."""
        engine = self.engine
        ones = torch.ones((len(self.rows), 1), dtype=torch.bool)
        self.mask = torch.cat([self.mask, ones], dim=1)
        logits = engine.forward(self.tokens[:, None], self.mask, self.positions[:, None], self.cache)
        tokens = sample_next(engine, logits, self.params, self.steps)
        self.steps += 1
        self.positions += 1
        self.tokens = tokens
        for row, token in zip(self.rows, tokens.tolist()):
            if row.finish is None and engine.check_finished(row, token):
                self.dead += 1
                yield row
        # a finished row costs 1/B of a step while it stays; dropping rows copies the whole cache
        if self.dead and self.dead >= len(self.rows) // DROP_FRACTION:
            self.compact()

    def compact(self) -> None:
        """Drop the finished rows from every tensor."""
        if not self.dead:
            return
        keep = [i for i, row in enumerate(self.rows) if row.finish is None]
        self.dead = 0
        if not keep:
            self.rows, self.cache, self.mask = [], None, None
            return
        index = torch.tensor(keep, dtype=torch.long)
        self.rows = [self.rows[i] for i in keep]
        self.mask = self.mask[index]
        # columns that are padding for every remaining row only cost attention time
        first_real = int(self.mask.any(dim=0).nonzero()[0])
        for layer in self.cache.layers:
            layer.select(index, first_real)
        self.mask = self.mask[:, first_real:]
        self.positions = self.positions[index]
        self.tokens = self.tokens[index]
        self.params = self.params.select(keep)
        self.steps = self.steps[keep]


@dataclass
class Params:
    """Per-row sampling parameters as tensors, in batch order."""

    temperature: Any
    top_p: Any
    seeds: np.ndarray

    @classmethod
    def of(cls, rows: list[Row]) -> Params:
        return cls(torch.tensor([max(0.0, r.request.temperature) for r in rows], dtype=torch.float32),
                   torch.tensor([r.request.top_p for r in rows], dtype=torch.float64),
                   np.array([r.seed for r in rows], dtype=np.uint64))

    def select(self, keep: list[int]) -> Params:
        return Params(self.temperature[keep], self.top_p[keep], self.seeds[keep])

    def concat(self, other: Params) -> Params:
        return Params(torch.cat([self.temperature, other.temperature]), torch.cat([self.top_p, other.top_p]),
                       np.concatenate([self.seeds, other.seeds]))

    @property
    def greedy(self) -> bool:
        return not bool((self.temperature > 0).any())


def sample_next(engine: Engine, logits: Any, params: Params, steps: np.ndarray) -> Any:
    if params.greedy:
        return logits.argmax(dim=-1)
    u = uniforms(params.seeds, steps)
    return sample(logits, params.temperature, params.top_p, u, k=DEFAULT_TOP_K)


def left_pad(tensor: Any, width: int) -> Any:
    missing = width - tensor.shape[1]
    if missing <= 0:
        return tensor
    return torch.cat([tensor.new_zeros((tensor.shape[0], missing)), tensor], dim=1)
