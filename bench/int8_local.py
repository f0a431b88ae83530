"""Weight-only int8 for the embedded model, measured before it goes into the local engine.

Every decoder-layer ``nn.Linear`` keeps its weight as int8 with one float scale per output row
(symmetric absmax) and multiplies through ``torch._weight_int8pack_mm`` (activations stay float); the
embedding and the tied output layer stay float. Same model, same held-out records, same greedy
decoding for float32 and int8 in one run; prints:

    int8_local: f32 X MB ppl P tok/s T | int8 Y MB ppl Q agreement A tok/s U -> size Z.ZZx smaller, speed R.RRx

The engine gets a ``--quant int8`` only where this measures faster, or >= 40% smaller at <= 1% perplexity.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


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


def main() -> None:
    from sftdata.eval.stage import load_eval_records
    from sftdata.export_model.verify import DEFAULT_PROMPTS, Reference, _examples, score, tokens_per_second
    from sftdata.llm.local.embedded import load_model_and_tokenizer

    records, _ = load_eval_records([DEFAULT_PROMPTS], limit=12)
    model, tokenizer = load_model_and_tokenizer(None, dtype=torch.float32)
    examples = _examples(tokenizer, records, 512)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    reference = Reference([order[i:i + 4] for i in range(0, len(order), 4)])
    pad = tokenizer.pad_token_id
    f32 = score(model, examples, pad, 4, reference)
    f32_speed, f32_bytes = tokens_per_second(model, tokenizer, records[:2], 16), weight_bytes(model)
    quantize_linears(model)
    int8 = score(model, examples, pad, 4, reference)
    int8_speed, int8_bytes = tokens_per_second(model, tokenizer, records[:2], 16), weight_bytes(model)
    print(f"int8_local: f32 {f32_bytes / 2**20:.1f} MB ppl {f32['perplexity']:.3f} {f32_speed:.2f} tok/s | int8 "
          f"{int8_bytes / 2**20:.1f} MB ppl {int8['perplexity']:.3f} agreement {int8['agreement']:.3f} "
          f"{int8_speed:.2f} tok/s -> size {f32_bytes / int8_bytes:.2f}x smaller, speed {int8_speed / f32_speed:.2f}x")


if __name__ == "__main__":
    main()
