"""The training loop's own kernels against peft's and transformers' paths (tiny random Llama):
fused LoRA layers and per-example attention over packed batches give the same losses and gradients."""

from __future__ import annotations

import contextlib

import pytest
import torch
from test_finetune_batching import one_thread, random_examples  # noqa: F401 (one_thread: its autouse fixture)

from sftdata.finetune.batching import collate, plan_batches
from sftdata.finetune.fused_lora import fused_lora
from sftdata.finetune.methods import MethodOptions, apply_method
from sftdata.finetune.packed_attention import NAME, attend_per_segment, packed_attention
from sftdata.finetune.runtime import TokenLoss, batch_loss
from sftdata.finetune.tiny import tiny_llama


def lora_model(dropout: float = 0.0, attn: str = "sdpa", seed: int = 0):
    torch.manual_seed(seed)
    model = tiny_llama(200, hidden=64, layers=2, attn_implementation=attn, initializer_range=0.2)
    model = apply_method(model, MethodOptions(method="lora", lora_dropout=dropout))
    with torch.no_grad():  # non-zero B: the adapter takes part in every comparison
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    return model


def loss_and_grads(model, batches, *contexts) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    loss = TokenLoss(model, prompt_learning=False)
    total = 0.0
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        for batch in batches:
            value = batch_loss(loss, batch)
            value.backward()
            total += float(value.detach())
    return total, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_grads_close(grads: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], rel: float) -> None:
    """Each gradient within ``rel`` of the reference, as a whole (single elements near zero differ by rounding)."""
    assert grads.keys() == reference.keys()
    for name, grad in reference.items():
        assert float((grads[name] - grad).norm()) <= rel * float(grad.norm()), name


def packed_batches(examples, budget=96, max_len=48):
    return [collate(examples, rows, 0, True) for rows in plan_batches(examples, budget, max_len, True, seed=0)]


def test_fused_lora_gives_peft_loss_and_gradients():
    model = lora_model()
    batches = packed_batches(random_examples(10, seed=5, max_len=48))
    reference, reference_grads = loss_and_grads(model, batches)
    with fused_lora(model) as patched:
        assert patched == 2 * 7  # q k v o gate up down in each of 2 layers
        fused, fused_grads = loss_and_grads(model, batches)
    assert fused == pytest.approx(reference, rel=1e-6)
    assert len(fused_grads) == 2 * 2 * 7  # A and B of each
    assert_grads_close(fused_grads, reference_grads, rel=1e-5)
    assert all("forward" not in vars(m) for m in model.modules())  # peft's forward is back after the block


def test_fused_lora_draws_the_same_dropout_as_peft():
    model = lora_model(dropout=0.3)
    batches = packed_batches(random_examples(6, seed=6, max_len=48))
    model.train()
    torch.manual_seed(1)
    reference, _ = loss_and_grads(model, batches)
    torch.manual_seed(1)
    fused, _ = loss_and_grads(model, batches, fused_lora(model))
    torch.manual_seed(2)
    other_draw, _ = loss_and_grads(model, batches, fused_lora(model))
    assert fused == pytest.approx(reference, rel=1e-6)
    assert abs(other_draw - reference) > 1e-4 * abs(reference)  # dropout really acts


def test_fused_lora_leaves_a_disabled_adapter_disabled():
    """DPO's reference pass runs the base model with the adapter switched off."""
    model = lora_model().eval()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad(), model.disable_adapter():
        base = model(input_ids=ids).logits
        with fused_lora(model):
            fused_base = model(input_ids=ids).logits
    with torch.no_grad(), fused_lora(model):
        adapted = model(input_ids=ids).logits
    torch.testing.assert_close(fused_base, base)
    assert not torch.allclose(adapted, base)


def test_fused_lora_under_bf16_autocast_is_no_further_from_fp32_than_peft():
    model = lora_model()
    batches = packed_batches(random_examples(8, seed=7, max_len=48))
    exact, _ = loss_and_grads(model, batches)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16)
    from peft.helpers import disable_input_dtype_casting

    peft_bf16, _ = loss_and_grads(model, batches, disable_input_dtype_casting(model), autocast)
    fused_bf16, _ = loss_and_grads(model, batches, torch.autocast("cpu", dtype=torch.bfloat16), fused_lora(model))
    assert abs(fused_bf16 - exact) <= max(abs(peft_bf16 - exact), 1e-3 * abs(exact))


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_per_example_attention_gives_the_masked_loss_and_gradients(attn):
    model = lora_model(attn=attn)
    examples = random_examples(12, seed=3, max_len=48)
    batches = packed_batches(examples)
    assert any(len(b.segments) > 2 for b in batches)  # several examples share a row
    unpacked = [collate(examples, rows, 0, False) for rows in plan_batches(examples, 96, 48, False, seed=0)]
    reference, reference_grads = loss_and_grads(model, unpacked)
    calls = []
    with packed_attention(model) as switched:
        assert switched and model.config._attn_implementation == NAME
        from transformers import AttentionInterface

        AttentionInterface.register(NAME, lambda *a, **k: calls.append(1) or attend_per_segment(*a, **k))
        try:
            packed, packed_grads = loss_and_grads(model, batches)
        finally:
            AttentionInterface.register(NAME, attend_per_segment)
    assert model.config._attn_implementation == attn  # restored
    assert len(calls) == 2 * len(batches)  # both layers of every batch went through it
    assert packed == pytest.approx(reference, rel=1e-5)
    assert_grads_close(packed_grads, reference_grads, rel=1e-5)


def test_per_example_attention_keeps_examples_apart():
    """The comparison above can fail: one causal pass over the whole row mixes the examples."""
    model = lora_model().eval()
    batch = collate(random_examples(6, seed=4, max_len=48), [list(range(6))], 0, True)
    loss = TokenLoss(model, prompt_learning=False)
    with torch.no_grad(), packed_attention(model):
        right = float(batch_loss(loss, batch))
        batch.segments = None  # the row read as one sequence
        wrong = float(batch_loss(loss, batch))
    assert abs(right - wrong) > 1e-2 * abs(right)


def test_packed_attention_refuses_keys_beyond_the_queries():
    query = torch.zeros(1, 2, 3, 4)
    key = torch.zeros(1, 2, 5, 4)
    with pytest.raises(ValueError, match="no cache"):
        attend_per_segment(None, query, key, key, None)


def test_models_outside_the_attention_interface_are_not_switched():
    model = lora_model()
    model.config._attn_implementation = "flash_attention_2"  # already packs by itself
    with packed_attention(model) as switched:
        assert not switched and model.config._attn_implementation == "flash_attention_2"
