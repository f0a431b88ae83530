"""The local engine never returns U+FFFD: bytes of a character split across tokens stay valid UTF-8.

With SmolLM2's byte-level vocabulary "规" is two tokens (``è§`` + ``Ħ``); a sampled model may follow the
first with a token that does not continue it, and the reply then decoded to "规\\ufffdán" (issue 15:
5 of 13 instructions of ``generate --lang zh``). These tests use the real SmolLM2 tokenizer and a
scripted forward that insists on such a sequence.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sftdata.finetune.tiny import smollm2_tokenizer
from sftdata.llm.base import Request
from sftdata.llm.local.engine import Engine
from sftdata.llm.local.kv_cache import GrowingCache
from sftdata.llm.local.utf8 import CLEAN, Utf8Guard, advance

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tok():
    return smollm2_tokenizer()


@pytest.fixture(scope="module")
def guard(tok):
    found = Utf8Guard.for_tokenizer(tok)
    assert found is not None  # a byte-level vocabulary
    return found


class Scripted:
    """A forward that wants ``script`` token by token, then EOS; every other token ranked by a fixed order."""

    def __init__(self, script: list[int], vocab: int, eos: int) -> None:
        self.script, self.eos, self.calls = script, eos, 0
        self.base = torch.randn(vocab, generator=torch.Generator().manual_seed(0))

    def new_cache(self, num_layers: int) -> GrowingCache:
        return GrowingCache(0)

    def __call__(self, ids, mask, positions, cache):
        logits = self.base.clone()
        logits[self.script[self.calls] if self.calls < len(self.script) else self.eos] = 30.0
        self.calls += 1
        return logits.expand(ids.shape[0], -1).clone()


@pytest.fixture(scope="module")
def engine(tok):
    config = transformers.LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                                      eos_token_id=tok.eos_token_id)
    return Engine(transformers.LlamaForCausalLM(config).eval(), tok, batch_size=4)


def run(engine, tok, script, guarded=True, **sampling):
    engine.forward = Scripted(script, len(tok), tok.eos_token_id)
    kept, engine.utf8 = engine.utf8, (engine.utf8 if guarded else None)
    try:
        request = Request.chat("请写一句话。", max_tokens=sampling.pop("max_tokens", 64), seed=1, **sampling)
        return engine.generate([request])[0].text
    finally:
        engine.utf8 = kept


def test_the_guard_knows_every_token_of_the_real_vocabulary(tok, guard):
    gui = tok.convert_tokens_to_ids("è§")  # the first two bytes of 规 (E8 A7)
    assert guard.step(CLEAN, gui) == (1, 0x80, 0xBF)
    assert guard.step((1, 0x80, 0xBF), tok.convert_tokens_to_ids("Ħ")) == CLEAN  # A7 + 84: 规 complete
    assert guard.step((1, 0x80, 0xBF), tok("án", add_special_tokens=False)["input_ids"][0]) is None
    assert guard.step((1, 0x80, 0xBF), tok.eos_token_id) == (1, 0x80, 0xBF)  # special tokens add no bytes
    assert guard.step(CLEAN, tok.convert_tokens_to_ids("Ħ")) is None  # a continuation byte with nothing to continue
    assert advance(CLEAN, "规划 ok".encode()) == CLEAN and advance(CLEAN, b"\xe0\x80") is None  # overlong


def test_any_walk_through_allowed_tokens_decodes_cleanly(tok, guard):
    rng = np.random.default_rng(0)
    for _ in range(20):
        state, ids = CLEAN, []
        for _ in range(60):
            choices = np.flatnonzero(guard.allowed(state, len(tok)) & (guard.length > 0))
            token = int(rng.choice(choices))
            state = guard.step(state, token)
            ids.append(token)
        text = tok.decode(ids)
        assert "\ufffd" not in (text[:-1] if state[0] else text)


def test_a_cut_character_in_the_middle_never_reaches_the_text(engine, tok):
    ids = tok("请帮我们规", add_special_tokens=False)["input_ids"]
    script = ids[:-1] + tok("án的说明", add_special_tokens=False)["input_ids"]  # 规's first half, then "án"
    assert "\ufffd" in run(engine, tok, script, guarded=False)  # what the engine returned before
    for sampling in ({"temperature": 0.0}, {"temperature": 1.0, "top_p": 0.95}):
        text = run(engine, tok, script, **sampling)
        assert "\ufffd" not in text and text.startswith("请帮我们") and "说明" in text


def test_a_reply_cut_by_max_tokens_holds_back_the_half_character(engine, tok):
    script = tok("请帮我们规划", add_special_tokens=False)["input_ids"]
    cut = len(tok("请帮我们规", add_special_tokens=False)["input_ids"]) - 1  # inside 规
    assert run(engine, tok, script, guarded=False, max_tokens=cut).endswith("\ufffd")
    assert run(engine, tok, script, max_tokens=cut) == "请帮我们"


def test_valid_text_is_left_exactly_as_it_was(engine, tok):
    for sentence in ("请帮我们规划一下周末的旅行。", "Plan a weekend trip: café, naïve, 鿐 and 𠀀."):
        script = tok(sentence, add_special_tokens=False)["input_ids"]
        assert run(engine, tok, script) == run(engine, tok, script, guarded=False) == sentence
