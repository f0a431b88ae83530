"""The chunked LM-head log-probabilities: the same values and gradients as a plain log-softmax."""

from __future__ import annotations

import pytest
import torch

from sftdata.finetune.fused_logps import token_logps


@pytest.mark.parametrize("chunk", [3, 7, 64])  # chunks that split the tokens unevenly, and one chunk
def test_token_logps_equal_log_softmax_in_value_and_gradient(chunk):
    torch.manual_seed(0)
    hidden = torch.randn(20, 16, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(50, 16, dtype=torch.float64)
    targets = torch.randint(0, 50, (20,))
    scale = torch.randn(20, dtype=torch.float64)  # a per-token upstream gradient, as a DPO loss gives

    expected = (hidden @ weight.t()).log_softmax(-1).gather(1, targets[:, None]).squeeze(1)
    (expected * scale).sum().backward()
    expected_grad, hidden.grad = hidden.grad.clone(), None

    got = token_logps(hidden, weight, targets, chunk=chunk)
    (got * scale.float()).sum().backward()
    assert got.dtype == torch.float32
    assert torch.allclose(got.double(), expected, atol=1e-5)
    assert torch.allclose(hidden.grad, expected_grad, atol=1e-5)


def test_token_logps_without_autograd_keeps_no_gradient():
    hidden, weight = torch.randn(5, 8, requires_grad=True), torch.randn(11, 8)
    with torch.no_grad():
        out = token_logps(hidden, weight, torch.zeros(5, dtype=torch.long))
    assert not out.requires_grad and out.shape == (5,)


def test_a_trainable_head_gets_its_gradient():
    hidden, weight = torch.randn(5, 8), torch.randn(11, 8, requires_grad=True)
    token_logps(hidden, weight, torch.arange(5)).sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0
