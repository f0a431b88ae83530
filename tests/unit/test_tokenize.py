"""The Latin tokenizer is rouge-score's, token for token; the CJK one splits CJK characters."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rouge_score import tokenizers

from sftdata.filter.tokenize import cjk_count, get_tokenizer, has_cjk, tokenize_cjk, tokenize_rouge

ROUGE = tokenizers.DefaultTokenizer(use_stemmer=False)
ROUGE_STEM = tokenizers.DefaultTokenizer(use_stemmer=True)

# characters whose lower() is surprising: the Kelvin sign, dotted capital I, final sigma, ligatures,
# full-width letters, digits of other scripts, combining marks
ODD = "\u212a\u0130\u03a3\u1e9e\ufb01\uff21\uff41\u0660\u0966\u0301\u00df\u2160\u24b6\u00c5\u212b"
MIXED = st.text(alphabet=st.sampled_from(list("abcXYZ019 -_.,!?'\n\t") + list(ODD) + list("中文字日本語한국어かな")),
                max_size=80)


def test_known_odd_characters():
    assert tokenize_rouge("\u212aelvin") == ["kelvin"] == ROUGE.tokenize("\u212aelvin")
    # İ lowers to i + a combining dot above, which then separates tokens
    assert tokenize_rouge("\u0130stanbul") == ["i", "stanbul"] == ROUGE.tokenize("\u0130stanbul")
    assert tokenize_rouge("Hello, World! 42") == ["hello", "world", "42"]
    assert tokenize_rouge("中文句子") == []  # why rouge-score's filter never fires on Chinese


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_equals_rouge_score_on_any_text(text):
    assert tokenize_rouge(text) == ROUGE.tokenize(text)


@settings(max_examples=200, deadline=None)
@given(MIXED)
def test_equals_rouge_score_on_mixed_and_odd_text(text):
    assert tokenize_rouge(text) == ROUGE.tokenize(text)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcdeingsly \u212a\u0130")), max_size=60))
def test_stemming_equals_rouge_score(text):
    assert tokenize_rouge(text, stem=True) == ROUGE_STEM.tokenize(text)


def test_cjk_tokenizer_splits_characters_and_keeps_latin_runs():
    assert tokenize_cjk("我爱Python3编程！") == ["我", "爱", "python3", "编", "程"]
    assert tokenize_cjk("日本語のテキスト") == list("日本語のテキスト")
    assert tokenize_cjk("한국어 문장") == list("한국어문장")
    assert tokenize_cjk("々〇𠀀") == ["々", "〇", "𠀀"]  # iteration mark, ideographic zero, extension B
    assert tokenize_cjk("，。、“”") == []  # CJK punctuation is not a token


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcXYZ019 -_.,!?'\n") + list(ODD)), max_size=60))
def test_cjk_and_auto_equal_rouge_without_cjk(text):
    assert not has_cjk(text)
    assert tokenize_cjk(text) == tokenize_rouge(text) == get_tokenizer("auto")(text)


@settings(max_examples=100, deadline=None)
@given(MIXED)
def test_auto_is_cjk_on_mixed_text(text):
    assert get_tokenizer("auto")(text) == tokenize_cjk(text)


def test_get_tokenizer():
    assert get_tokenizer("rouge") is tokenize_rouge
    assert get_tokenizer("cjk") is tokenize_cjk
    with pytest.raises(ValueError, match="unknown tokenizer"):
        get_tokenizer("whitespace")


def test_cjk_tokenizer_covers_every_han_block():
    # U+9FA6..U+9FFF (missed by a class ending at U+9FA5), extension A, B, F, compatibility ideographs
    han = "\u9fa6\u9fff\u3400\u4dbf\U00020000\U0002ceb0\uf900\ufaff\U0002f800"
    assert tokenize_cjk(f"a{han}b") == ["a", *han, "b"]
    assert get_tokenizer("auto")(han) == list(han) and has_cjk(han[0]) and has_cjk(han[-1])


# Han characters at the edges of each block: the newest unified ideographs (U+9FA6-U+9FFF, added after
# Unicode 4.1; a range ending at U+9FA5 misses them), extension A, the compatibility ideographs, and
# extensions B-G outside the BMP.
HAN_EDGES = {
    "unified, after U+9FA5": "\u9fa6\u9fcb\u9fd0\u9fea\u9fff",
    "extension A": "\u3400\u3a3a\u4db5\u4dbf",
    "compatibility": "\uf900\ufa0e\ufa70\ufad9",
    "extensions B-G": "\U00020000\U0002a6d6\U0002a700\U0002b740\U0002ceb0\U00030000",
}


@pytest.mark.parametrize("block", list(HAN_EDGES))
def test_every_han_block_is_one_token_per_character(block):
    chars = HAN_EDGES[block]
    assert tokenize_cjk(chars) == list(chars)
    assert tokenize_cjk(f"ab {chars} 12") == ["ab", *chars, "12"]
    assert get_tokenizer("auto")(chars) == list(chars)
    assert all(has_cjk(c) for c in chars) and cjk_count(chars) == len(chars)


@pytest.mark.parametrize("block", list(HAN_EDGES))
def test_the_filter_sees_near_duplicates_written_in_rare_han_characters(block):
    from sftdata.filter.rouge import RougeIndex

    chars = HAN_EDGES[block]
    index = RougeIndex(tokenizer="auto", threshold=0.7)
    index.add("请写" + chars + "的故事")
    assert not index.is_novel("请写" + chars + "的文章")  # 8 of 9 characters shared
    assert index.is_novel("请写一首关于秋天的诗")


@pytest.mark.parametrize("block", ["unified, after U+9FA5", "extension A", "compatibility"])
def test_language_detectors_know_the_same_han_blocks(block):
    from sftdata.clean.text import has_cjk as clean_has_cjk
    from sftdata.generate.config import looks_chinese

    chars = HAN_EDGES[block]
    assert looks_chinese(chars) and all(clean_has_cjk(c) for c in chars)
