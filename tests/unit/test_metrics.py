"""Metric functions of `sftdata eval` against hand-computed cases, in English and Chinese."""

from __future__ import annotations

import math

import pytest

from sftdata.eval.metrics import (
    classification_scores,
    exact_match,
    match_label,
    mean,
    normalize_answer,
    perplexity,
    rouge_l,
)


@pytest.mark.parametrize("text, expected", [
    ("  Positive.  ", "positive"),
    ("Hello   World!\n", "hello world"),
    ("ＡＢＣ　１２３", "abc 123"),  # NFKC: full-width letters, digits and space
    ("是。", "是"),
    ("「北京」", "北京"),
    ("¿Qué?", "qué"),
    ("3.14", "3.14"),  # punctuation inside stays
    ("...", ""),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match():
    assert exact_match("The answer is 42.", "the answer  is 42")
    assert not exact_match("42", "43")
    assert exact_match("北京。", "北京")
    assert not exact_match("北 京", "北京")  # whitespace is collapsed, not removed
    assert not exact_match("The answer is 42", "42")


def test_rouge_l_english():
    # LCS "the cat on the mat" = 5 of 6 tokens each side: P = R = F = 5/6
    assert rouge_l("the cat sat on the mat", "the cat lay on the mat") == pytest.approx(5 / 6)
    # LCS 2; P = 2/2, R = 2/6; F = 2PR/(P+R) = 0.5
    assert rouge_l("The cat.", "the cat sat on the mat") == pytest.approx(0.5)
    assert rouge_l("dogs bark", "the cat sat") == 0.0
    assert rouge_l("", "anything") == 0.0


def test_rouge_l_chinese_counts_characters():
    # 4 shared characters (我喜欢吃) of 6 each: F = 4/6
    assert rouge_l("我喜欢吃苹果", "我喜欢吃香蕉") == pytest.approx(4 / 6)
    # LCS 天气很好 = 4; lengths 6 and 4: F = 2*4/(6+4)
    assert rouge_l("今天天气很好", "天气很好") == pytest.approx(0.8)
    # punctuation is not a token; mixed scripts: 用 python 写 一 个 函 数 on both sides
    assert rouge_l("用Python写一个函数。", "用 python 写一个函数") == pytest.approx(1.0)
    assert rouge_l("完全不同", "毫无关系") == 0.0


def test_match_label():
    labels = ["negative", "positive", "positive feedback"]
    assert match_label("Positive.", labels) == "positive"
    assert match_label("positive, because it is fun", labels) == "positive"
    assert match_label("Positive feedback!", labels) == "positive feedback"  # the longest label wins
    assert match_label("positively", labels) is None  # a word boundary is required after English labels
    assert match_label("neutral", labels) is None
    assert match_label("是的，因为很好", ["否", "是"]) == "是"  # no boundary needed after a CJK label
    assert match_label("是的", ["是", "是的"]) == "是的"
    # a label named once inside a sentence counts; two labels named, or a label inside a word, do not
    assert match_label("The review is positive.", labels) == "positive"
    assert match_label("It is either positive or negative.", labels) is None
    assert match_label("The sentiment is unpositive", labels) is None
    assert match_label("I would call it positive feedback overall", labels) == "positive feedback"
    assert match_label("这句话的情感是负面的。", ["正面", "负面"]) == "负面"
    assert match_label("", labels) is None


def test_classification_scores_with_a_label_never_predicted():
    refs = ["positive", "positive", "negative", "negative", "neutral"]
    preds = ["Positive.", "negative", "Negative!", "I think so", "positive, clearly"]
    s = classification_scores(preds, refs)
    # mapped: positive, negative, negative, (none), positive
    assert s.labels == ["negative", "neutral", "positive"]
    assert s.accuracy == pytest.approx(2 / 5)
    assert s.invalid_rate == pytest.approx(1 / 5)
    assert s.per_label["positive"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert s.per_label["negative"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert s.per_label["neutral"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert s.macro_precision == pytest.approx(1 / 3)
    assert s.macro_recall == pytest.approx(1 / 3)
    assert s.macro_f1 == pytest.approx(1 / 3)


def test_classification_scores_chinese():
    refs = ["正面", "负面", "负面"]
    preds = ["正面。", "负面的，因为……", "正面"]
    s = classification_scores(preds, refs)
    # 正面: P = 1/2, R = 1/1, F1 = 2/3; 负面: P = 1/1, R = 1/2, F1 = 2/3
    assert s.accuracy == pytest.approx(2 / 3)
    assert s.per_label["正面"]["precision"] == pytest.approx(0.5)
    assert s.per_label["负面"]["recall"] == pytest.approx(0.5)
    assert s.macro_precision == pytest.approx(0.75)
    assert s.macro_recall == pytest.approx(0.75)
    assert s.macro_f1 == pytest.approx(2 / 3)
    assert s.invalid_rate == 0.0


def test_classification_scores_edge_cases():
    perfect = classification_scores(["A", "b"], ["a", "B."])
    assert (perfect.accuracy, perfect.macro_f1) == (1.0, 1.0)
    empty = classification_scores([], [])
    assert (empty.n, empty.accuracy, empty.macro_f1) == (0, 0.0, 0.0)
    with pytest.raises(ValueError):
        classification_scores(["a"], [])
    assert classification_scores(["x"], ["y"]).to_dict()["invalid_rate"] == 1.0


def test_perplexity_and_mean():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(4)) == pytest.approx(4.0)
    assert perplexity(1000.0) == math.inf
    assert mean([]) == 0.0 and mean([1.0, 2.0]) == 1.5
