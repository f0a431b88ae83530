"""Weight-only int8 for the local engine: every transformer-block ``nn.Linear`` keeps its weight as int8
with one float scale per output row (symmetric, absmax) and multiplies through
``torch._weight_int8pack_mm`` (activations stay float). The embedding and the tied output layer stay
float. About 4x less memory for the projections than float32; see bench/quantize.py for its cost.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Int8Linear(nn.Module):
    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scales = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        self.register_buffer("weight_int8", torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scales.to(linear.weight.dtype))
        self.bias = linear.bias
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        out = torch._weight_int8pack_mm(x.reshape(-1, shape[-1]), self.weight_int8, self.scales.to(x.dtype))
        out = out.reshape(*shape[:-1], self.out_features)
        return out if self.bias is None else out + self.bias


def quantize_linears(model: Any) -> Any:
    """Replace the decoder layers' linear projections with :class:`Int8Linear`, in place."""
    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, Int8Linear(child))
    return model


def weight_bytes(model: Any) -> int:
    """Bytes of the model's parameters and buffers (tied tensors once)."""
    seen, total = set(), 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    return total
