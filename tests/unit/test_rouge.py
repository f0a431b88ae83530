"""RougeIndex makes exactly the decisions of scoring with rouge-score against every kept text."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from sftdata.filter.rouge import RougeIndex, lcs_length, rouge_l_f
from sftdata.filter.tokenize import tokenize_cjk, tokenize_rouge


class _CJK:
    tokenize = staticmethod(tokenize_cjk)


SCORERS = {"rouge": rouge_scorer.RougeScorer(["rougeL"]),
           "cjk": rouge_scorer.RougeScorer(["rougeL"], tokenizer=_CJK()),
           "auto": rouge_scorer.RougeScorer(["rougeL"], tokenizer=_CJK())}  # auto == cjk token for token


def reference(texts, threshold, tokenizer="rouge"):
    """The Alpaca / Self-Instruct loop: score each text against every kept one, drop when F > threshold."""
    scorer = SCORERS[tokenizer]
    kept, out = [], []
    for text in texts:
        scores = [scorer.score(text, k)["rougeL"].fmeasure for k in kept]
        novel = not any(s > threshold for s in scores)
        out.append((novel, max(scores, default=0.0)))
        if novel:
            kept.append(text)
    return out


def assert_same_as_reference(texts, threshold, tokenizer="rouge"):
    index = RougeIndex(tokenizer, threshold)
    scorer = SCORERS[tokenizer]
    expected = reference(texts, threshold, tokenizer)
    for text, (novel, best) in zip(texts, expected, strict=True):
        match = index.check_and_add(text)
        assert match.novel == novel, (text, match, best)
        if not novel:  # the reported best is the exact maximum for a rejected text
            assert match.score == best
        else:
            assert match.score <= max(best, 0.0)
        if match.most_similar is not None:
            assert match.score == scorer.score(text, match.most_similar)["rougeL"].fmeasure
    assert len(index) == sum(novel for novel, _ in expected)


# ---------------------------------------------------------------- the exact float expression

def test_tie_at_threshold_follows_rouge_scores_float_expression():
    target = "a b c d e f g x"  # 8 tokens
    prediction = "a b c d e f g p q r s t"  # 12 tokens, LCS 7
    score = SCORERS["rouge"].score(target, prediction)["rougeL"].fmeasure
    assert score == 0.7000000000000001 and 2 * 7 / (8 + 12) == 0.7  # 2L/(m+n) would keep it
    assert rouge_l_f(tokenize_rouge(target), tokenize_rouge(prediction)) == score
    index = RougeIndex("rouge", 0.7)
    index.add(prediction)
    match = index.check(target)
    assert not match.novel and match.score == score and match.most_similar == prediction


def test_exactly_threshold_is_kept():
    kept = "a b c d e f g h i j"
    text = "a b c d e f g x y z"  # LCS 7 of 10 and 10: F is exactly 0.7
    assert SCORERS["rouge"].score(text, kept)["rougeL"].fmeasure == 0.7
    index = RougeIndex("rouge", 0.7)
    index.add(kept)
    assert index.check(text).novel


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("abcde"), max_size=30), st.lists(st.sampled_from("abcde"), max_size=30))
def test_rouge_l_f_equals_rouge_score(a, b):
    expected = rouge_scorer._score_lcs(a, b).fmeasure
    assert rouge_l_f(a, b) == expected
    assert lcs_length(a, b) == lcs_length(b, a)


# ---------------------------------------------------------------- decisions equal the scan

WORDS = st.sampled_from("the a cat dog sat on mat red blue big".split())
SENTENCES = st.lists(st.lists(WORDS, min_size=0, max_size=14).map(" ".join), min_size=1, max_size=25)
THRESHOLDS = st.sampled_from([0.7, 0.7, 0.5, 0.3, 0.9, 0.0, 1.0, 0.65])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SENTENCES, THRESHOLDS)
def test_decisions_and_scores_equal_rouge_score_on_ascii(texts, threshold):
    assert_same_as_reference(texts, threshold)


PIECES = st.sampled_from(["Cat", "cat", "猫", "狗", "坐", "在", "垫子", "上", "日本", "の", "한국", "\u212a", "\u0130", "42",
                          ",", "。", " ", "  ", "-", "é", "Σ"])
MIXED = st.lists(st.lists(PIECES, max_size=16).map("".join), min_size=1, max_size=20)


@pytest.mark.parametrize("tokenizer", ["rouge", "cjk", "auto"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=MIXED, threshold=THRESHOLDS)
def test_decisions_and_scores_equal_rouge_score_on_mixed_text(tokenizer, texts, threshold):
    assert_same_as_reference(texts, threshold, tokenizer)


def test_many_texts_through_rerankings_and_growth():
    """Hundreds of near-duplicates: the index re-ranks at 32, 64, 128 ... texts and grows its arrays."""
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(60)]
    texts: list[str] = []
    for _ in range(300):
        if texts and rng.random() < 0.4:
            words = rng.choice(texts).split()
            for _ in range(rng.randint(1, 3)):
                words[rng.randrange(len(words))] = rng.choice(vocab)
            texts.append(" ".join(words))
        else:
            texts.append(" ".join(rng.choice(vocab[: rng.randint(5, 60)]) for _ in range(rng.randint(1, 20))))
    assert_same_as_reference(texts, 0.7)
    index = RougeIndex("rouge", 0.7)
    index.check_and_add_many(texts)
    assert index.stats["rerankings"] >= 3


def test_long_texts_use_several_machine_words():
    rng = random.Random(3)
    base = [rng.choice("abcdefgh") for _ in range(150)]
    variant = list(base)
    for _ in range(25):
        variant[rng.randrange(150)] = "z"
    texts = [" ".join(base), " ".join(variant), " ".join(reversed(base)), " ".join(base[:70])]
    for threshold in (0.5, 0.7, 0.9):
        assert_same_as_reference(texts, threshold)


def test_batch_equals_one_by_one():
    rng = random.Random(1)
    texts = [" ".join(rng.choice("abcdefg") for _ in range(rng.randint(3, 12))) for _ in range(300)]
    one = RougeIndex("rouge")
    single = [one.check_and_add(t) for t in texts]
    assert RougeIndex("rouge").check_and_add_many(texts) == single


# ---------------------------------------------------------------- Chinese

KEPT_ZH = ["请写一首关于秋天的短诗。", "解释一下机器学习和深度学习的区别。", "给出三个保持健康的建议。"]


def test_chinese_near_duplicates_are_rejected_and_unrelated_pass():
    index = RougeIndex("auto", 0.7)
    for text in KEPT_ZH:
        assert index.check_and_add(text).novel
    near = index.check("请写一首关于春天的短诗。")  # one character changed
    assert not near.novel and near.most_similar == KEPT_ZH[0] and near.score > 0.9
    assert not index.check("解释一下机器学习与深度学习的区别。").novel
    assert index.check("把下面这段话翻译成英文。").novel
    assert index.check("列出五种常见的水果。").novel


def test_rouge_tokenizer_never_fires_on_chinese():
    index = RougeIndex("rouge", 0.7)  # rouge-score's tokens: Chinese has none, every pair scores 0
    index.add(KEPT_ZH[0])
    assert index.check(KEPT_ZH[0]).novel and index.check(KEPT_ZH[0]).score == 0.0


# ---------------------------------------------------------------- API

def test_check_does_not_add_and_check_and_add_adds_only_novel():
    index = RougeIndex("rouge")
    assert len(index) == 0 and index.check("a b c d").novel and len(index) == 0
    assert index.check_and_add("a b c d").novel and len(index) == 1
    dup = index.check_and_add("a b c d")
    assert not dup.novel and dup.score == 1.0 and dup.most_similar == "a b c d" and len(index) == 1
    index.add("a b c d")  # add() stores unconditionally
    assert len(index) == 2
    assert index.is_novel("completely unrelated words here")
    assert index.check("").novel and index.check("").score == 0.0


def test_threshold_bounds():
    with pytest.raises(ValueError, match="threshold"):
        RougeIndex(threshold=1.5)
    strict = RougeIndex("rouge", 0.0)  # any shared token drops
    strict.add("x y z")
    assert not strict.check("a b z").novel and strict.check("a b c").novel
    lenient = RougeIndex("rouge", 1.0)  # nothing drops, not even a copy
    lenient.add("x y z")
    assert lenient.check("x y z").novel


def test_nearest_is_the_exact_maximum_that_check_only_bounds():
    import random

    from sftdata.filter.tokenize import tokenize_auto

    rng = random.Random(7)
    words = "the a cat dog sat on mat red blue sky sun write poem story about explain why list tips".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(240)]
    index = RougeIndex(threshold=0.7)
    index.add_many(texts[:200])
    lower_bounds = 0
    for query in texts[200:]:
        scores = [rouge_l_f(tokenize_auto(t), tokenize_auto(query)) for t in texts[:200]]
        match = index.nearest(query)
        assert match.score == max(scores) and match.most_similar == texts[scores.index(max(scores))]
        assert match.novel == index.check(query).novel
        assert index.nearest(query, among=50).score == max(scores[:50])
        lower_bounds += index.check(query).score < match.score
    assert lower_bounds  # check's neighbour of a novel text really is only a bound


def test_nearest_among_near_copies_scores_one_pair_and_names_the_earliest(monkeypatch):
    import sftdata.filter.rouge as rouge

    texts = [f"Explain topic number {i} in simple words for a child." for i in range(2000)]
    index = RougeIndex("rouge", threshold=0.9)  # the copies score exactly 0.9: each stays novel
    assert all(match.novel for match in index.check_and_add_many(texts))
    scored = []
    monkeypatch.setattr(rouge, "rouge_l_f", lambda a, b: scored.append(1) or rouge_l_f(a, b))
    match = index.nearest("Explain topic number 2001 in simple words for a child.")
    assert (match.score, match.most_similar, match.novel) == (0.9, texts[0], True)
    # every stored text ties at the bound 0.9: once the earliest scored it, no other can win
    assert len(scored) == 1
    assert index.nearest(texts[1500], among=1500).most_similar == texts[0]
