"""Packing, token-budget batches, and the loss on packed vs unpacked rows (tiny random Llama)."""

from __future__ import annotations

import random

import pytest
import torch

from sftdata.core.errors import ConfigError
from sftdata.core.records import Record
from sftdata.finetune.batching import collate, pack_rows, plan_batches
from sftdata.finetune.data import IGNORE, TokenizedExample, tokenize_example
from sftdata.finetune.methods import MethodOptions, apply_method
from sftdata.finetune.runtime import TokenLoss, batch_loss
from sftdata.finetune.tiny import byte_tokenizer, tiny_llama


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The models here are a few thousand parameters: a second thread only adds synchronisation, which
    on a loaded machine costs ~10x the matmuls themselves (3.2 s vs 0.3 s for the eager loss test at load 6)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_examples(n: int, seed: int = 0, vocab: int = 200, max_len: int = 40) -> list[TokenizedExample]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        prompt, reply = rng.randint(2, max_len // 2), rng.randint(1, max_len // 2)
        ids = [rng.randrange(3, vocab) for _ in range(prompt + reply)]
        out.append(TokenizedExample(ids, [IGNORE] * prompt + ids[prompt:]))
    return out


def test_pack_rows_respects_capacity_and_uses_every_example_once():
    lengths = [random.Random(i).randint(1, 50) for i in range(200)]
    rows = pack_rows(lengths, 64)
    assert sorted(i for row in rows for i in row) == list(range(200))
    assert all(sum(lengths[i] for i in row) <= 64 for row in rows)
    assert len(rows) <= sum(lengths) / 64 * 1.25 + 1  # first-fit decreasing packs tightly


@pytest.mark.parametrize("packing", [True, False])
def test_batches_hold_at_most_the_token_budget(packing):
    examples = random_examples(300, max_len=64)
    batches = plan_batches(examples, batch_tokens=256, max_len=64, packing=packing, seed=1)
    seen = sorted(i for batch in batches for row in batch for i in row)
    assert seen == list(range(300))
    for rows in batches:
        batch = collate(examples, rows, pad_id=0, packed=packing)
        assert batch.input_ids.numel() <= 256
        assert batch.n_real == sum(len(examples[i]) for row in rows for i in row)
    if not packing:  # length-grouped: little padding
        padding = sum(collate(examples, b, 0, False).input_ids.numel() for b in batches) - sum(map(len, examples))
        assert padding < 0.15 * sum(map(len, examples))
    # a different seed gives a different order, the same examples
    other = plan_batches(examples, batch_tokens=256, max_len=64, packing=packing, seed=2)
    assert other != batches


def test_budget_smaller_than_max_len_is_a_config_error():
    with pytest.raises(ConfigError, match="--batch-tokens"):
        plan_batches(random_examples(3), batch_tokens=32, max_len=64, packing=True, seed=0)


def test_collate_restarts_positions_and_shifts_targets_per_example():
    a = TokenizedExample([5, 6, 7, 8], [IGNORE, IGNORE, 7, 8])
    b = TokenizedExample([9, 10, 11], [IGNORE, 10, 11])
    batch = collate([a, b], [[0, 1]], pad_id=2, packed=True)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9, 10, 11]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2]]
    # a's last token never predicts b's first token
    assert batch.targets.tolist() == [[IGNORE, 7, 8, IGNORE, 10, 11, IGNORE]]
    assert batch.attention_mask is None and batch.n_trainable == 4 and batch.n_real == 7
    padded = collate([a, b], [[0], [1]], pad_id=2, packed=False)
    assert padded.input_ids.tolist() == [[5, 6, 7, 8], [9, 10, 11, 2]]
    assert padded.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert padded.targets.tolist() == [[IGNORE, 7, 8, IGNORE], [10, 11, IGNORE, IGNORE]]


def hf_loss_sum(model, examples: list[TokenizedExample]) -> float:
    """Reference: transformers' own loss, one unpadded example at a time, as a token sum."""
    total = 0.0
    for example in examples:
        out = model(input_ids=torch.tensor([example.input_ids]), labels=torch.tensor([example.labels]))
        total += float(out.loss) * (example.n_trainable - (example.labels[0] != IGNORE))
    return total


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_and_unpacked_batches_give_the_same_loss(attn):
    # a large init makes each token's output depend strongly on its context
    model = tiny_llama(200, hidden=64, layers=2, attn_implementation=attn, initializer_range=0.2)
    model = apply_method(model, MethodOptions(method="lora"))
    with torch.no_grad():  # non-zero LoRA B, so the adapter takes part in the comparison
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    model.eval()
    loss = TokenLoss(model, prompt_learning=False)
    examples = random_examples(12, seed=3, max_len=48)
    with torch.no_grad():
        packed = [collate(examples, rows, 0, True) for rows in
                  plan_batches(examples, batch_tokens=96, max_len=48, packing=True, seed=0)]
        unpacked = [collate(examples, rows, 0, False) for rows in
                    plan_batches(examples, batch_tokens=96, max_len=48, packing=False, seed=0)]
        assert any(len(row) > 1 for b in plan_batches(examples, 96, 48, True, 0) for row in b)  # really packed
        packed_sum = sum(float(batch_loss(loss, b)) for b in packed)
        unpacked_sum = sum(float(batch_loss(loss, b)) for b in unpacked)
        reference = hf_loss_sum(model, examples)
    assert sum(b.n_trainable for b in packed) == sum(b.n_trainable for b in unpacked)
    assert packed_sum == pytest.approx(unpacked_sum, rel=1e-5)
    assert packed_sum == pytest.approx(reference, rel=1e-5)


def test_packing_without_position_restarts_would_differ():
    """The comparison above can fail: packed rows seen as one sequence give another loss."""
    model = tiny_llama(200, hidden=64, layers=2, initializer_range=0.2).eval()
    loss = TokenLoss(apply_method(model, MethodOptions()), prompt_learning=False)
    examples = random_examples(6, seed=4, max_len=48)
    batch = collate(examples, [list(range(6))], 0, True)
    with torch.no_grad():
        right = float(batch_loss(loss, batch))
        wrong = float(loss(batch.input_ids, batch.targets,
                           torch.arange(batch.input_ids.shape[1])[None], None))
    assert abs(right - wrong) > 1e-2 * abs(right)  # >> the 1e-5 tolerance above


def test_real_tokenizer_examples_pack_with_the_same_loss():
    tokenizer = byte_tokenizer()
    records = [Record(instruction=f"Say {w}.", output=f"{w}!" * (i + 1)) for i, w in enumerate(["a", "bb", "ccc"])]
    examples = [tokenize_example(tokenizer, r, 128) for r in records]
    model = apply_method(tiny_llama(len(tokenizer)), MethodOptions(method="ia3")).eval()
    loss = TokenLoss(model, prompt_learning=False)
    with torch.no_grad():
        packed = float(batch_loss(loss, collate(examples, [[0, 1, 2]], tokenizer.pad_token_id, True)))
        single = sum(float(batch_loss(loss, collate(examples, [[i]], tokenizer.pad_token_id, False)))
                     for i in range(3))
    assert packed == pytest.approx(single, rel=1e-5)
