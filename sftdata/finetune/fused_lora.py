"""LoRA layers computed as one output tensor each, for the training loops.

peft's ``lora.Linear`` computes ``base(x) + lora_B(lora_A(x)) * scaling``: besides the output it
allocates the base result, the B product and the scaled copy, three full-width temporaries per
layer that are freed at once. In a CPU profile of a SmolLM2 step the scaling and the addition took
a tenth of the time; worse, the freed temporaries, interleaved with the activations kept for
backward, fragment the heap: whether the allocator reuses their holes varied from run to run, and
the peak memory with it (1.72 or 2.19 GB for the same 512-token batches).

:func:`fused_lora` replaces the forward of each plain LoRA layer (one active adapter, no DoRA or
other variant, not merged) with ``out = base(x); out += scaling * (dropout(x) @ A.T) @ B.T``, the
addition done inside the matmul (``addmm_`` with ``alpha``). Autograd allows the in-place update:
the base matmul does not keep its output for backward. The math is peft's; only rounding order
differs. Other layers keep peft's forward. The adapter saved is peft's, unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F


def _fused_forward(layer: Any, adapter: str, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    if args or kwargs or layer.merged or layer.disable_adapters or layer.active_adapters != [adapter]:
        return type(layer).forward(layer, x, *args, **kwargs)  # what the fused path does not cover
    base = layer.base_layer
    flat = x.reshape(-1, x.shape[-1])
    out = F.linear(flat, base.weight, base.bias)
    low = F.linear(layer.lora_dropout[adapter](flat), layer.lora_A[adapter].weight)
    # under autocast ``out`` and ``low`` are bf16 while the adapter weight stays fp32
    up = layer.lora_B[adapter].weight.to(out.dtype)
    out.addmm_(low.to(out.dtype), up.t(), alpha=layer.scaling[adapter])
    return out.view(*x.shape[:-1], out.shape[-1])


def fusable(module: torch.nn.Module) -> str | None:
    """The adapter name if ``module`` is a plain LoRA linear layer the fused forward computes."""
    from peft.tuners.lora import Linear as LoraLinear

    if type(module) is not LoraLinear or not isinstance(module.base_layer, torch.nn.Linear):
        return None
    if module.fan_in_fan_out or module.merged or len(module.active_adapters) != 1:
        return None
    adapter = module.active_adapters[0]
    if adapter not in module.lora_A or adapter in module.lora_variant or module.lora_B[adapter].bias is not None:
        return None
    return adapter


@contextlib.contextmanager
def fused_lora(model: torch.nn.Module) -> Iterator[int]:
    """Within the block, plain LoRA linear layers of ``model`` run the fused forward; yields how many."""
    patched = []
    for module in model.modules():
        adapter = fusable(module)
        if adapter is not None:
            module.forward = lambda x, *a, _m=module, _n=adapter, **k: _fused_forward(_m, _n, x, *a, **k)
            patched.append(module)
    try:
        yield len(patched)
    finally:
        for module in patched:
            del module.forward  # back to the class's forward
