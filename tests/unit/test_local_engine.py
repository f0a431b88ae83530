"""The local engine on a tiny random Llama (no download, seconds): lean forward, cache surgery, scheduling."""

from __future__ import annotations

import asyncio
import time

import pytest
import torch

from sftdata.llm.base import Request
from sftdata.llm.client import LLM, LLMConfig
from sftdata.llm.local.engine import Engine, LocalBackend
from sftdata.llm.local.fast_llama import FastLlama, HFForward, Linear, onednn_linear_works
from sftdata.llm.local.kv_cache import GrowingCache, GrowingLayer

transformers = pytest.importorskip("transformers")

EOS = 2


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                      tie_word_embeddings=True, eos_token_id=EOS, pad_token_id=EOS,
                                      initializer_range=0.3)  # sharp attention: positions matter
    model = transformers.LlamaForCausalLM(config).eval()
    model.generation_config.eos_token_id = EOS
    return model


class DigitTokenizer:
    """Characters to ids and back, with a chat template: enough of a tokenizer for the engine."""

    chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
    eos_token_id = pad_token_id = EOS
    eos_token = pad_token = "<eos>"

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False):
        return "".join(f"[{m['role']}]{m['content']}" for m in messages) + "[assistant]"

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [8 + ord(c) % 88 for c in text]}

    def decode(self, ids, skip_special_tokens=False):
        return " ".join(str(i) for i in ids if i >= 8 or not skip_special_tokens)


def reference_greedy(model, prompt: list[int], max_new: int) -> list[int]:
    """Greedy decoding by recomputing the whole sequence each step: no cache, no batch, no padding."""
    ids = list(prompt)
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(max_new):
            token = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
            out.append(token)
            if token == EOS:
                break
            ids.append(token)
    return out


def left_padded(prompts: list[list[int]]):
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), EOS)
    mask = torch.zeros((len(prompts), width), dtype=torch.bool)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = True
    return ids, mask, (mask.long().cumsum(-1) - 1).clamp(min=0)


@pytest.mark.parametrize("make", [FastLlama.from_hf, HFForward], ids=["lean", "transformers"])
def test_forward_with_our_cache_matches_transformers_own(tiny, make) -> None:
    forward = make(tiny)
    prompts = [[5, 9, 13, 17, 21, 25], [7, 11], [30, 31, 32, 33]]
    ids, mask, positions = left_padded(prompts)
    with torch.inference_mode():
        cache = forward.new_cache(2)
        ours = forward(ids, mask, positions, cache)
        reference = transformers.DynamicCache()
        theirs = tiny(input_ids=ids, attention_mask=mask.long(), position_ids=positions, past_key_values=reference,
                      use_cache=True).logits[:, -1]
        for row, prompt in enumerate(prompts):  # the real tokens of every row, not padding, decide
            alone = tiny(input_ids=torch.tensor([prompt])).logits[0, -1]
            torch.testing.assert_close(ours[row], alone, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
        tokens, next_pos = ours.argmax(-1), positions[:, -1] + 1
        for _ in range(4):
            mask = torch.cat([mask, torch.ones((3, 1), dtype=torch.bool)], dim=1)
            ours = forward(tokens[:, None], mask, next_pos[:, None], cache)
            theirs = tiny(input_ids=tokens[:, None], attention_mask=mask.long(), position_ids=next_pos[:, None],
                          past_key_values=reference, use_cache=True).logits[:, -1]
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
            tokens, next_pos = ours.argmax(-1), next_pos + 1


@pytest.mark.parametrize("shape", [(1, 48), (7, 48), (16, 48), (3, 5, 48)], ids=["1", "7", "16", "3x5"])
def test_the_packed_linear_computes_what_f_linear_does(shape) -> None:
    # oneDNN is laid out for PACK_ROWS rows; any other count, a bias and a [B, L, K] input must still be right
    generator = torch.Generator().manual_seed(1)
    weight, bias = torch.randn(96, 48, generator=generator), torch.randn(96, generator=generator)
    x = torch.randn(*shape, generator=generator)
    assert onednn_linear_works(torch.float32) == torch.backends.mkldnn.is_available()
    for packed in (True, False) if torch.backends.mkldnn.is_available() else (False,):
        out = Linear(weight, bias, packed)(x)
        assert out.shape == (*shape[:-1], 96)
        torch.testing.assert_close(out, torch.nn.functional.linear(x, weight, bias), atol=1e-5, rtol=1e-5)


def test_sftdata_onednn_0_keeps_f_linear(tiny, monkeypatch) -> None:
    assert FastLlama.from_hf(tiny).packed == torch.backends.mkldnn.is_available()
    monkeypatch.setenv("SFTDATA_ONEDNN", "0")
    forward = FastLlama.from_hf(tiny)
    assert not forward.packed and not forward.lm_head.packed and forward.lm_head.weight is tiny.lm_head.weight


def test_lite_weights_and_default_rope_match_transformers(tiny, tmp_path) -> None:
    from sftdata.llm.local.lite import LiteModel

    tiny.save_pretrained(tmp_path)
    lite = LiteModel(tmp_path, torch.float32)
    ids, mask, positions = left_padded([[5, 6, 7, 8, 9], [10, 11, 12]])
    with torch.inference_mode():
        ours = FastLlama(lite.config, lite.weights)(ids, mask, positions, GrowingCache(2))
        theirs = FastLlama.from_hf(tiny)(ids, mask, positions, GrowingCache(2))
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("system", ["all", "mixed"])
def test_engine_batches_agree_with_one_prompt_at_a_time(tiny, system) -> None:
    # batch 3 for 9 requests of different lengths: rows finish, leave, and new ones join mid-flight;
    # a shared system prompt is prefilled once, kept, and reused by the rows admitted later
    tokenizer = DigitTokenizer()
    engine = Engine(tiny, tokenizer, batch_size=3)
    assert isinstance(engine.forward, FastLlama)
    texts = ["a", "hello there", "xyz", "a longer prompt than the others", "q", "tiny", "mid size", "ok", "fin"]
    requests = [Request.chat(t, system=None if system == "mixed" and i in (2, 5) else "You are a helpful bot.",
                             temperature=0, max_tokens=3 + (i * 5) % 11) for i, t in enumerate(texts)]
    completions = engine.generate(requests)
    assert len(completions) == len(requests)
    assert bool(engine._prefixes) == (system == "all")  # the shared prefix was used
    for request, completion in zip(requests, completions):
        prompt = tokenizer(tokenizer.apply_chat_template(request.message_dicts()))["input_ids"]
        want = reference_greedy(tiny, prompt, request.max_tokens)
        assert completion.usage.prompt_tokens == len(prompt)
        assert completion.usage.completion_tokens == len(want)
        assert completion.text == tokenizer.decode([t for t in want if t != EOS], skip_special_tokens=True)
        assert completion.finish_reason == ("stop" if want[-1] == EOS else "length")


def test_engine_sampling_is_reproducible_per_seed(tiny) -> None:
    engine = Engine(tiny, DigitTokenizer(), batch_size=2)
    requests = [Request.chat(t, temperature=1.0, top_p=0.9, max_tokens=12, seed=s)
                for t, s in [("same", 1), ("other", 5), ("same", 1), ("same", 2)]]
    first = [c.text for c in engine.generate(requests)]
    assert first[0] == first[2] and first[0] != first[3]
    assert [c.text for c in engine.generate(requests)] == first


def test_growing_layer_surgery_matches_plain_tensors() -> None:
    torch.manual_seed(1)
    layer = GrowingLayer()
    k, v = torch.randn(3, 2, 5, 4), torch.randn(3, 2, 5, 4)
    keys, values = layer.update(k, v)
    torch.testing.assert_close(keys, k)
    steps = [(torch.randn(3, 2, 1, 4), torch.randn(3, 2, 1, 4)) for _ in range(70)]  # past the headroom
    for sk, sv in steps:
        layer.update(sk, sv)
    full_k = torch.cat([k] + [s[0] for s in steps], dim=2)
    full_v = torch.cat([v] + [s[1] for s in steps], dim=2)
    torch.testing.assert_close(layer.keys, full_k)
    torch.testing.assert_close(layer.values, full_v)
    assert layer.keys_t.transpose(2, 3).equal(layer.keys) and layer.get_seq_length() == 75
    # drop row 1 and the first 3 time steps
    layer.select(torch.tensor([0, 2]), start=3)
    torch.testing.assert_close(layer.keys, full_k[[0, 2], :, 3:])
    # take in a shorter cache: both left-padded with zeros to the wider one
    other = GrowingLayer()
    ok, ov = torch.randn(1, 2, 10, 4), torch.randn(1, 2, 10, 4)
    other.update(ok, ov)
    layer.extend_batch(other, width=72)
    assert layer.keys.shape == (3, 2, 72, 4)
    torch.testing.assert_close(layer.keys[:2], full_k[[0, 2], :, 3:])
    torch.testing.assert_close(layer.values[2, :, 62:], ov[0])
    assert not layer.keys[2, :, :62].any()
    # a shared prefix copied into every row
    fresh = GrowingLayer()
    fresh.fill(ok, ov, batch=4)
    torch.testing.assert_close(fresh.keys, ok.expand(4, -1, -1, -1))
    fresh.update(torch.ones(4, 2, 1, 4), torch.ones(4, 2, 1, 4))
    assert fresh.get_seq_length() == 11 and fresh.keys[:, :, -1].eq(1).all()


def test_requests_that_cannot_run_fail_alone(tiny) -> None:
    class Strict(DigitTokenizer):
        def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False):
            if any(m["role"] == "system" for m in messages):
                raise ValueError("no system role in this template")
            return super().apply_chat_template(messages, add_generation_prompt, tokenize)

    engine = Engine(tiny, Strict(), batch_size=4)
    out = engine.generate([Request.chat("fine", temperature=0, max_tokens=4),
                           Request.chat("x", system="rejected", max_tokens=4),
                           Request.chat("y" * 600, max_tokens=4),  # longer than the 512 positions
                           Request.chat("nothing asked", max_tokens=0),
                           Request.chat("also fine", temperature=0.8, max_tokens=4, seed=3)])
    assert [c.ok for c in out] == [True, False, False, True, True]
    assert out[1].error == "ValueError" and "system" in out[1].error_detail
    assert out[2].error == "ContextLengthExceeded" and out[2].usage.prompt_tokens > 512
    assert out[3].text == "" and out[3].finish_reason == "length" and out[3].usage.completion_tokens == 0
    assert out[0].usage.completion_tokens > 0 and out[4].usage.completion_tokens > 0


NEVER = 500  # no token of the 96-token vocabulary


class EndlessTokenizer(DigitTokenizer):
    eos_token_id = NEVER


@pytest.fixture(scope="module")
def endless():
    """A tiny Llama whose end-of-sequence id lies outside its vocabulary: rows run to max_tokens."""
    torch.manual_seed(1)
    config = transformers.LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                      tie_word_embeddings=True, eos_token_id=None, pad_token_id=EOS)
    model = transformers.LlamaForCausalLM(config).eval()
    model.generation_config.eos_token_id = NEVER
    return model


def test_on_tokens_counts_as_the_completions_do(tiny) -> None:
    engine = Engine(tiny, DigitTokenizer(), batch_size=2)
    counted: list[int] = []
    requests = [Request.chat(t, temperature=0, max_tokens=3 + 4 * i) for i, t in enumerate(["a", "bb", "long one"])]
    completions = engine.generate(requests, on_tokens=counted.append)
    assert len(counted) > len(requests)  # prefill and every decode step, not once a batch
    assert sum(counted) == sum(c.usage.prompt_tokens + c.usage.completion_tokens for c in completions)


def test_a_cancelled_batch_stops_within_a_step(endless) -> None:
    """Ctrl-C cancels the task awaiting the batch; the engine thread then stops at its next decode step
    instead of generating the rest (asyncio.run waits for that thread on the way out, as the CLI's exit does)."""
    backend = LocalBackend(batch_size=4)
    backend._engine = Engine(endless, EndlessTokenizer(), batch_size=4)
    requests = [Request.chat(f"prompt {i}", temperature=0, max_tokens=450) for i in range(6)]
    reports: list[int] = []

    async def cancel_after_a_few_steps() -> int:
        task = asyncio.create_task(backend.complete(requests, on_tokens=reports.append))
        while len(reports) < 5:
            await asyncio.sleep(0.005)
        task.cancel()
        seen = len(reports)
        with pytest.raises(asyncio.CancelledError):
            await task
        return seen

    started = time.perf_counter()
    seen = asyncio.run(cancel_after_a_few_steps())
    assert len(reports) <= seen + 2  # the step in flight ends; no other starts
    assert time.perf_counter() - started < 30  # (the whole batch: 6 x 450 tokens)
    assert not backend._lock.locked()
    # the backend still works: the next batch runs to its end
    done = asyncio.run(backend.complete([Request.chat("after", temperature=0, max_tokens=20)]))
    assert done[0].usage.completion_tokens == 20


def test_live_counts_move_while_a_local_batch_generates(endless) -> None:
    backend = LocalBackend(batch_size=4)
    backend._engine = Engine(endless, EndlessTokenizer(), batch_size=4)
    llm = LLM(LLMConfig(backend="local", cache=False), backend)
    seen: list[int] = []

    async def watch() -> None:
        task = asyncio.create_task(llm.complete([Request.chat(f"p{i}", temperature=0, max_tokens=150)
                                                 for i in range(3)]))
        while not task.done():
            seen.append(llm.live.decoding)
            await asyncio.sleep(0.005)
        await task

    asyncio.run(watch())
    moving = sorted(set(seen) - {0})
    assert len(moving) >= 3  # several counts between the batch's start and its end, not one jump
    assert llm.live.decoding == 0
    assert llm.stats.completion_tokens == 450 and max(moving) <= llm.stats.prompt_tokens + 450
