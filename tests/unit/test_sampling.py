"""The local engine's sampler: exact against a full-sort reference, a true sampler, greedy, reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sftdata.llm.local.sampling import sample, uniforms

VOCAB = 49152


@pytest.fixture(autouse=True)
def one_thread():
    # small ops on 2 busy cores: OpenMP hand-offs cost more than they save
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reference(logits: torch.Tensor, temperature: float, top_p: float, u: float) -> int:
    """The textbook definition: sort the whole vocabulary, cut the nucleus, invert the CDF.

    Same arithmetic as the sampler (probabilities exp(l/T - max) / Z, Z summed in float64), so the
    comparison is exact, not approximate.
    """
    if temperature == 0:
        return int(logits.argmax())
    scaled = logits.to(torch.float32)[None] / torch.tensor([[temperature]], dtype=torch.float32)
    mass = torch.exp(scaled - scaled.max())
    total = mass.sum(dim=-1, dtype=torch.float64)[0]
    if top_p >= 1:  # no nucleus: the vocabulary in its own order
        cdf = mass[0].to(torch.float64).cumsum(0)
        order = torch.arange(mass.shape[-1])
        target = u * float(total)
    else:
        order = torch.sort(scaled[0], descending=True, stable=True).indices
        probs = mass[0][order].to(torch.float64) / total
        before = probs.cumsum(0) - probs
        keep = before < top_p
        keep[0] = True
        cdf = (probs * keep).cumsum(0)
        target = u * float(cdf[-1])
    position = int((cdf <= target).sum())
    position = min(position, int((cdf < cdf[-1]).sum()))
    return int(order[position])


def random_logits(rows: int, seed: int, scale: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(rows, VOCAB, generator=gen) * scale


@pytest.mark.parametrize("scale", [1.0, 6.0, 15.0])  # flat (full-sort fallback) to peaked
@pytest.mark.parametrize("top_p", [0.1, 0.9, 1.0])
def test_fast_sampler_equals_full_sort_reference(scale: float, top_p: float) -> None:
    rows = 12
    logits = random_logits(rows, seed=int(scale * 100 + top_p * 10), scale=scale)
    temperature = torch.tensor([0.7, 1.0, 0.3, 1.5] * (rows // 4))
    u = uniforms(np.arange(rows, dtype=np.uint64) + 17, 3)
    got = sample(logits, temperature, torch.full((rows,), top_p), u, k=64)
    want = [reference(logits[i], float(temperature[i]), top_p, float(u[i])) for i in range(rows)]
    assert got.tolist() == want


def test_both_paths_are_exercised_and_agree_in_one_batch() -> None:
    # a flat row whose nucleus does not fit in k=8, and peaked rows whose nucleus does
    flat = torch.zeros(1, VOCAB) + torch.randn(1, VOCAB, generator=torch.Generator().manual_seed(1)) * 1e-3
    peaked = random_logits(3, seed=2, scale=20.0)
    logits = torch.cat([peaked[:1], flat, peaked[1:]])
    temperature, top_p = torch.ones(4), torch.full((4,), 0.9)
    for step in range(4):
        u = uniforms(np.array([5, 6, 7, 8], dtype=np.uint64), step)
        got = sample(logits, temperature, top_p, u, k=8)
        assert got.tolist() == [reference(logits[i], 1.0, 0.9, float(u[i])) for i in range(4)]


def test_greedy_rows_take_the_argmax_whatever_their_draw() -> None:
    logits = random_logits(6, seed=3, scale=3.0)
    temperature = torch.tensor([0.0, 0.8, 0.0, 0.0, 1.2, 0.0])
    u = uniforms(np.arange(6, dtype=np.uint64), 0)
    got = sample(logits, temperature, torch.full((6,), 0.9), u)
    argmax = logits.argmax(dim=-1)
    for i in (0, 2, 3, 5):
        assert got[i] == argmax[i]


def test_draws_follow_the_nucleus_distribution() -> None:
    # a small vocabulary with known probabilities: 0.5, 0.3, 0.15, 0.05 -> top_p 0.9 keeps the first three
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = torch.log(probs).repeat(4000, 1)
    rows = logits.shape[0]
    counts = np.zeros(4)
    for step in range(5):
        u = uniforms(np.arange(rows, dtype=np.uint64) + 1000 * step, step)
        tokens = sample(logits, torch.ones(rows), torch.full((rows,), 0.9), u, k=4)
        counts += np.bincount(tokens.numpy(), minlength=4)
    freq = counts / counts.sum()
    assert counts[3] == 0  # outside the nucleus: never drawn
    np.testing.assert_allclose(freq[:3], [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95], atol=0.01)


def test_temperature_sharpens_the_distribution() -> None:
    logits = torch.log(torch.tensor([0.6, 0.4])).repeat(20000, 1)
    u = uniforms(np.arange(20000, dtype=np.uint64), 0)
    cold = sample(logits, torch.full((20000,), 0.25), torch.ones(20000), u, k=2)
    hot = sample(logits, torch.full((20000,), 1.0), torch.ones(20000), u, k=2)
    # p0 at T=0.25 is 0.6^4 / (0.6^4 + 0.4^4) = 0.835
    assert abs(float((cold == 0).float().mean()) - 0.835) < 0.01
    assert abs(float((hot == 0).float().mean()) - 0.6) < 0.01


def test_uniforms_are_reproducible_uniform_and_per_seed() -> None:
    seeds = np.arange(50000, dtype=np.uint64)
    a, b = uniforms(seeds, 7), uniforms(seeds, 7)
    assert torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) < 1.0
    assert abs(float(a.mean()) - 0.5) < 0.01
    assert not torch.equal(a, uniforms(seeds, 8))
    # a row's draw depends on its own seed only, not on its neighbours
    assert float(uniforms(np.array([123], dtype=np.uint64), 7)[0]) == float(a[123])


def test_top_p_zero_keeps_the_most_likely_token() -> None:
    logits = random_logits(8, seed=4, scale=2.0)
    u = uniforms(np.arange(8, dtype=np.uint64), 0)
    got = sample(logits, torch.ones(8), torch.zeros(8), u)
    assert torch.equal(got, logits.argmax(dim=-1))


@pytest.mark.parametrize("vocab", [VOCAB, 1000])  # 1000: the chunked CDF pads the last chunk
def test_mixed_rows_greedy_nucleus_and_full_vocabulary_in_one_batch(vocab: int) -> None:
    logits = (torch.randn(8, vocab, generator=torch.Generator().manual_seed(9)) * 4).to(torch.bfloat16)
    temperature = torch.tensor([0.0, 0.7, 1.0, 0.5, 1.3, 0.0, 0.9, 0.6])
    top_p = torch.tensor([0.9, 1.0, 0.9, 1.0, 0.5, 1.0, 0.95, 1.0])
    for step in range(3):
        u = uniforms(np.arange(8, dtype=np.uint64) + 40, step)
        got = sample(logits, temperature, top_p, u, k=32)
        want = [reference(logits[i].float(), float(temperature[i]), float(top_p[i]), float(u[i])) for i in range(8)]
        assert got.tolist() == want
