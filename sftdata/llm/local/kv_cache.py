"""A KV cache for the local engine that grows in place and can drop, trim and take in rows.

transformers' ``DynamicLayer`` concatenates the whole cache with the new key/value at every step,
copying all of it (at batch 32 and a few hundred tokens, ~200 MB a step for a 30-layer model).
Here each layer keeps buffers with spare room along the time axis and writes into them; attention
reads views of the filled part. Copies happen only when a buffer grows (geometrically), when
finished rows leave, or when new rows join (:class:`sftdata.llm.local.decode.Batch`).

This module imports no transformers (start-up time): :func:`hf_cache` wraps the same layers in a
transformers ``Cache`` for the generic forward path, on demand.

Keys are stored transposed, ``[B, H, D, capacity]``: decode attention multiplies the query by
``K^T``, and a bmm over a strided view of that layout runs about 3x faster in bf16 than over a
transposed view of ``[B, H, capacity, D]``. ``keys`` still shows them as ``[B, H, T, D]``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

_HEADROOM = 64  # minimum spare time steps allocated when a buffer is (re)built


class GrowingLayer:
    """One decoder layer's keys and values, ``[B, H, T, D]`` as seen from outside."""

    is_sliding = False
    is_compileable = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # cooperative: the transformers variant mixes in DynamicLayer
        self.is_initialized = False
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        self.length = 0
        b, h, _, d = key_states.shape
        self._kt = key_states.new_empty((b, h, d, 0))  # keys, transposed
        self._v = value_states.new_empty((b, h, 0, value_states.shape[-1]))
        self._expose()
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self._v.shape[2]:
            self._rebuild(torch.arange(self._v.shape[0]), 0, end + max(_HEADROOM, end // 2))
        self._kt[:, :, :, self.length:end] = key_states.transpose(2, 3)
        self._v[:, :, self.length:end] = value_states
        self.length = end
        self._expose()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def _expose(self) -> None:
        self.keys_t = self._kt[:, :, :, :self.length]  # [B, H, D, T]
        self.keys = self.keys_t.transpose(2, 3)
        self.values = self._v[:, :, :self.length]

    def _rebuild(self, rows: torch.Tensor, start: int, capacity: int, pad_left: int = 0) -> None:
        """Copy rows ``rows`` and time steps ``start:length`` into fresh buffers, ``pad_left`` zeros first."""
        kept = self.length - start
        b, h, d, _ = self._kt.shape
        alloc = torch.zeros if pad_left else torch.empty
        kt = alloc((len(rows), h, d, capacity), dtype=self._kt.dtype)
        v = alloc((len(rows), h, capacity, self._v.shape[-1]), dtype=self._v.dtype)
        kt[:, :, :, pad_left:pad_left + kept] = self._kt[rows, :, :, start:self.length]
        v[:, :, pad_left:pad_left + kept] = self._v[rows, :, start:self.length]
        self._kt, self._v = kt, v
        self.length = pad_left + kept
        self._expose()

    def fill(self, keys: torch.Tensor, values: torch.Tensor, batch: int) -> None:
        """Become ``batch`` copies of a one-row cache (``keys``/``values`` [1, H, T, D])."""
        self.lazy_initialization(keys, values)
        h, t, d = keys.shape[1:]
        self.length = t
        self._kt = keys.new_empty((batch, h, d, t + _HEADROOM))
        self._v = values.new_empty((batch, h, t + _HEADROOM, values.shape[-1]))
        self._kt[:, :, :, :t] = keys.transpose(2, 3)
        self._v[:, :, :t] = values
        self._expose()

    # ------------------------------------------------------------ batch surgery
    def select(self, rows: torch.Tensor, start: int = 0) -> None:
        """Keep only ``rows``, and only time steps from ``start`` on (leading all-padding columns)."""
        if self.is_initialized:
            self._rebuild(rows, start, self.length - start + _HEADROOM)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.select(indices)

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def extend_batch(self, other: GrowingLayer, width: int) -> None:
        """Append ``other``'s rows; both are left-padded with zeros to ``width`` time steps."""
        self._rebuild(torch.arange(self._v.shape[0]), 0, width + _HEADROOM, pad_left=width - self.length)
        start = width - other.length
        kt = self._kt.new_zeros((other._kt.shape[0],) + self._kt.shape[1:])
        v = self._v.new_zeros((other._v.shape[0],) + self._v.shape[1:])
        kt[:, :, :, start:width] = other.keys_t
        v[:, :, start:width] = other.values
        self._kt = torch.cat([self._kt, kt])
        self._v = torch.cat([self._v, v])
        self._expose()


class GrowingCache:
    """The engine's cache: one :class:`GrowingLayer` per decoder layer."""

    def __init__(self, num_layers: int) -> None:
        self.layers = [GrowingLayer() for _ in range(num_layers)]

    def fill(self, prefix: list[tuple[torch.Tensor, torch.Tensor]], batch: int) -> None:
        """Start every one of ``batch`` rows with the same keys/values (one row each, per layer)."""
        for layer, (keys, values) in zip(self.layers, prefix):
            layer.fill(keys, values, batch)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        for layer in self.layers:
            layer.select(indices)


def hf_cache(num_layers: int) -> Any:
    """A transformers ``Cache`` made of growing layers, for models run through transformers' forward."""
    return _hf_classes()[1](num_layers)


@lru_cache(maxsize=1)
def _hf_classes() -> tuple[type, type]:
    from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

    class HFGrowingLayer(GrowingLayer, DynamicLayer):
        """Our storage, with the rest of the transformers layer API (mask sizes, flags...)."""

    class HFGrowingCache(DynamicCache):
        def __init__(self, num_layers: int) -> None:
            Cache.__init__(self, layers=[HFGrowingLayer() for _ in range(num_layers)])

        fill = GrowingCache.fill

    return HFGrowingLayer, HFGrowingCache
