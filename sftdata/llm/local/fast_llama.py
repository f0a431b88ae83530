"""A lean forward pass for Llama-architecture models (SmolLM2 is one), used by the local engine.

Same weights and the same arithmetic as transformers' ``LlamaForCausalLM``, with less around it:
q/k/v and gate/up projections fused into one matmul each (4 matmuls a layer instead of 7), decode
attention as two batched matmuls over the grouped KV heads read straight from the cache buffer
(no ``repeat_kv``, no SDPA dispatch, no copy of a strided cache view), one additive mask for all
layers, and logits for the last position only. On a 2-core CPU the model's Python and dispatch
overhead is a large share of a decode step, so this matters as much as the matmuls.

The matmuls (over 80% of a batched decode step in a torch profile) go through oneDNN with each
weight reordered once into its blocked layout (:class:`Linear`), where torch has oneDNN and the
dtype is supported: at 16 rows that runs the MLP and LM-head matmuls about 1.6x faster than
``F.linear`` (MKL sgemm) on this project's AMD EPYC VM, same float32 arithmetic up to summation
order. ``SFTDATA_ONEDNN=0`` keeps ``F.linear``.

Anything else (other architectures, unmerged adapters, exotic configs) takes the generic path:
:class:`HFForward` calls the transformers model itself.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F

from .kv_cache import GrowingCache, hf_cache
from .lite import LiteModel


class HFForward:
    """The generic path: the transformers model's own forward."""

    name = "transformers"

    def __init__(self, model: Any) -> None:
        self.model = model

    def new_cache(self, num_layers: int) -> Any:
        return hf_cache(num_layers)

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any) -> torch.Tensor:
        out = self.model(input_ids=ids, attention_mask=mask.long(), position_ids=positions, past_key_values=cache,
                         use_cache=True, logits_to_keep=1)
        return out.logits[:, -1, :]


def unsupported_reason(model: Any) -> str | None:
    """Why the lean path cannot run ``model`` (None when it can)."""
    if os.environ.get("SFTDATA_FAST_FORWARD", "1") == "0":
        return "disabled by SFTDATA_FAST_FORWARD=0"
    if type(model).__name__ != "LlamaForCausalLM":
        return f"{type(model).__name__} is not a plain LlamaForCausalLM"
    config = model.config
    if (getattr(config, "pretraining_tp", 1) or 1) != 1:
        return "pretraining_tp > 1"
    if getattr(config, "sliding_window", None):
        return "sliding-window attention"
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        linears = (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj)
        if any(type(m) is not torch.nn.Linear for m in linears):
            return "wrapped projections (an unmerged adapter?)"
    return None


PACK_ROWS = 16  # the row count oneDNN is told to expect when it lays a weight out (any count runs)


class Linear:
    """``x @ weight.T + bias``, through oneDNN on a weight reordered once, or ``F.linear``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, packed: bool) -> None:
        self.bias, self.packed = bias, packed
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight, PACK_ROWS) if packed else weight

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)


def onednn_linear_works(dtype: torch.dtype) -> bool:
    """Whether :class:`Linear` can pack weights of ``dtype`` here, checked by computing one against ``F.linear``.

    The reorder raises where the CPU lacks the dtype's kernels (bf16 without AVX512-BF16 or AVX-NE-CONVERT)."""
    if os.environ.get("SFTDATA_ONEDNN", "1") == "0" or not torch.backends.mkldnn.is_available():
        return False
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(64, 32, generator=generator).to(dtype)
    x = torch.randn(5, 32, generator=generator).to(dtype)
    try:
        got = Linear(weight, None, packed=True)(x)
    except (RuntimeError, AttributeError):  # an op this torch build lacks, or an unsupported dtype
        return False
    return bool(torch.allclose(got.float(), F.linear(x, weight).float(), rtol=1e-2, atol=1e-2))


class _Layer:
    def __init__(self, w: Any, prefix: str, config: Any, act: Any, packed: bool) -> None:
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.scale = self.head_dim ** -0.5
        self.eps = config.rms_norm_eps
        self.ln1 = w[f"{prefix}.input_layernorm.weight"]
        self.ln2 = w[f"{prefix}.post_attention_layernorm.weight"]
        attn, mlp = f"{prefix}.self_attn", f"{prefix}.mlp"
        self.qkv = Linear(torch.cat([w[f"{attn}.{n}_proj.weight"] for n in "qkv"]).contiguous(),
                          _cat_bias(w, [f"{attn}.{n}_proj" for n in "qkv"]), packed)
        self.o = Linear(w[f"{attn}.o_proj.weight"], w.get(f"{attn}.o_proj.bias"), packed)
        self.gate_up = Linear(torch.cat([w[f"{mlp}.gate_proj.weight"], w[f"{mlp}.up_proj.weight"]]).contiguous(),
                              _cat_bias(w, [f"{mlp}.gate_proj", f"{mlp}.up_proj"]), packed)
        self.down = Linear(w[f"{mlp}.down_proj.weight"], w.get(f"{mlp}.down_proj.bias"), packed)
        self.act = act
        self.split = [self.heads * self.head_dim, self.kv_heads * self.head_dim, self.kv_heads * self.head_dim]


def _cat_bias(w: Any, names: list[str]) -> torch.Tensor | None:
    biases = [w.get(f"{name}.bias") for name in names]
    if all(b is None for b in biases):
        return None
    return torch.cat([b if b is not None else w[f"{name}.weight"].new_zeros(w[f"{name}.weight"].shape[0])
                      for b, name in zip(biases, names)])


class _DefaultRope:
    """RoPE without scaling, computed as transformers' ``LlamaRotaryEmbedding`` does."""

    def __init__(self, theta: float, head_dim: int) -> None:
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))

    def __call__(self, x: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = positions[..., None].float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # exactly LlamaRMSNorm: normalize in float32, scale in the model dtype
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class FastLlama:
    """Callable like :class:`HFForward`: (ids [B, L], mask [B, T], positions [B, L], cache) -> logits [B, V]."""

    name = "fast-llama"

    def __init__(self, config: Any, weights: Any, rope: Any = None, act: Any = F.silu) -> None:
        """``weights``: HF parameter names to tensors; ``rope(x, positions) -> (cos, sin)``."""
        self.embed = weights["model.embed_tokens.weight"]
        self.final_norm, self.final_eps = weights["model.norm.weight"], config.rms_norm_eps
        self.packed = onednn_linear_works(self.embed.dtype)
        self.lm_head = Linear(weights.get("lm_head.weight", self.embed), None, self.packed)
        self.layers = [_Layer(weights, f"model.layers.{i}", config, act, self.packed)
                       for i in range(config.num_hidden_layers)]
        self.rotary = rope or _DefaultRope(config.rope_theta, self.layers[0].head_dim)

    @classmethod
    def from_hf(cls, model: Any) -> FastLlama:
        weights = dict(model.named_parameters())
        weights.setdefault("lm_head.weight", model.lm_head.weight)  # tied weights are listed once
        return cls(model.config, weights, rope=model.model.rotary_emb, act=model.model.layers[0].mlp.act_fn)

    def new_cache(self, num_layers: int) -> GrowingCache:
        return GrowingCache(num_layers)

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any) -> torch.Tensor:
        batch, length = ids.shape
        x = F.embedding(ids, self.embed)
        cos, sin = self.rotary(x, positions)
        cos, sin = cos[:, None], sin[:, None]  # [B, 1, L, D]: broadcast over heads
        total = mask.shape[1]
        if length == 1:
            additive = torch.zeros(mask.shape, dtype=torch.float32).masked_fill_(~mask, float("-inf"))
            additive = additive[:, None, None, :]
            attend = None
        else:
            # causal within the new tokens, padding keys masked; a padding query sees itself (no NaN rows)
            query_at = torch.arange(length)[:, None] + (total - length)  # key index of each new token
            key_at = torch.arange(total)[None, :]
            attend = ((key_at <= query_at)[None] & mask[:, None, :]) | (key_at == query_at)[None]
            attend = attend[:, None]
            additive = None
        for i, layer in enumerate(self.layers):
            x = self._layer(layer, x, cos, sin, cache.layers[i], additive, attend, batch, length)
        last = _rms_norm(x[:, -1, :], self.final_norm, self.final_eps)
        return self.lm_head(last)

    def _layer(self, layer: _Layer, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, kv: Any,
               additive: torch.Tensor | None, attend: torch.Tensor | None, batch: int, length: int) -> torch.Tensor:
        h = _rms_norm(x, layer.ln1, layer.eps)
        q, k, v = layer.qkv(h).split(layer.split, dim=-1)
        d = layer.head_dim
        q = q.view(batch, length, layer.heads, d).transpose(1, 2)
        k = k.view(batch, length, layer.kv_heads, d).transpose(1, 2)
        v = v.view(batch, length, layer.kv_heads, d).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        keys, values = kv.update(k, v)
        if length == 1:
            out = _decode_attention(layer, q, kv.keys_t, values, additive, batch)
        else:
            out = _prefill_attention(layer, q, keys, values, attend)
        x = x + layer.o(out)
        h = _rms_norm(x, layer.ln2, layer.eps)
        gate, up = layer.gate_up(h).chunk(2, dim=-1)
        return x + layer.down(layer.act(gate) * up)


def _decode_attention(layer: _Layer, q: torch.Tensor, keys_t: torch.Tensor, values: torch.Tensor,
                      additive: torch.Tensor, batch: int) -> torch.Tensor:
    # one query per row: query heads grouped under their KV head ([B*Hkv, G, D]). The cache buffers
    # are [B, Hkv, D, capacity] (keys) and [B, Hkv, capacity, D] (values), so [B*Hkv, D, T] and
    # [B*Hkv, T, D] are views of them that bmm reads in place
    kv_heads, d = layer.kv_heads, layer.head_dim
    groups = layer.heads // kv_heads
    rows, total = batch * kv_heads, values.shape[2]
    q = q.reshape(rows, groups, d)
    scores = torch.bmm(q, _flat(keys_t, rows, d, total)).float()
    scores = scores.view(batch, kv_heads, groups, total) * layer.scale + additive
    probs = torch.softmax(scores, dim=-1).to(values.dtype).view(rows, groups, total)
    out = torch.bmm(probs, _flat(values, rows, total, d))
    return out.view(batch, 1, layer.heads * d)


def _flat(t: torch.Tensor, rows: int, n: int, m: int) -> torch.Tensor:
    """``t`` [B, H, n, m] as [B*H, n, m]: a view when it is a slice of a contiguous buffer."""
    try:
        return t.view(rows, n, m)
    except RuntimeError:
        return t.reshape(rows, n, m)


def _prefill_attention(layer: _Layer, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                       attend: torch.Tensor) -> torch.Tensor:
    batch, _, length, d = q.shape
    groups = layer.heads // layer.kv_heads
    total = keys.shape[2]
    keys = keys[:, :, None].expand(batch, layer.kv_heads, groups, total, d).reshape(batch, layer.heads, total, d)
    values = values[:, :, None].expand(batch, layer.kv_heads, groups, total, d).reshape(batch, layer.heads, total, d)
    out = F.scaled_dot_product_attention(q, keys, values, attn_mask=attend, scale=layer.scale)
    return out.transpose(1, 2).reshape(batch, length, layer.heads * d)


def make_forward(model: Any) -> FastLlama | HFForward:
    if isinstance(model, LiteModel):
        forward = FastLlama(model.config, model.weights)
        model.weights = {}  # the forward holds what it uses; the unfused q/k/v and gate/up copies can go
        return forward
    return HFForward(model) if unsupported_reason(model) else FastLlama.from_hf(model)
