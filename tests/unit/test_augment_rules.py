"""rule:template and rule:keywords, English and Chinese: forms, cores, choices, and what they leave alone."""

from __future__ import annotations

import random

import pytest

from sftdata.augment.rules import is_constraint, keyword_variant, split_form, template_variant


@pytest.mark.parametrize("text, form, core", [
    ("Write a haiku about rain.", "imperative", "write a haiku about rain"),
    ("Please summarize the article in two sentences.", "imperative", "summarize the article in two sentences"),
    ("Could you please explain how vaccines work?", "imperative", "explain how vaccines work"),
    ("Can you tell me what a mutex is?", "imperative", "tell me what a mutex is"),
    ("What is the boiling point of water at high altitude?", "question",
     "What is the boiling point of water at high altitude"),
    ("Python is a language. Explain why it is popular.", "other", "Python is a language. Explain why it is popular."),
    ("The weather today", "other", "The weather today"),
    ("I want a recipe for bread", "other", "I want a recipe for bread"),
])
def test_english_forms(text: str, form: str, core: str) -> None:
    assert split_form(text, "en") == (form, core)


@pytest.mark.parametrize("text, form, core", [
    ("写一首关于雨的短诗。", "imperative", "写一首关于雨的短诗"),
    ("请根据下面的信息写一封请假邮件。", "imperative", "根据下面的信息写一封请假邮件"),
    ("你能解释一下光合作用吗？", "imperative", "解释一下光合作用"),
    ("为什么天空是蓝色的？", "question", "为什么天空是蓝色的"),
    ("请问地球到月球有多远？", "question", "请问地球到月球有多远"),
    ("这个句子有语法错误吗", "question", "这个句子有语法错误吗"),
    ("阅读下面的短文。然后回答问题。", "other", "阅读下面的短文。然后回答问题。"),
])
def test_chinese_forms(text: str, form: str, core: str) -> None:
    assert split_form(text, "zh") == (form, core)


def test_template_changes_syntax_not_content_en() -> None:
    seen = set()
    for seed in range(40):
        text, detail = template_variant("Write a haiku about rain.", "en", random.Random(seed))
        assert "haiku about rain" in text and text != "Write a haiku about rain."
        seen.add(text)
    # imperative templates and generic ones both get drawn
    assert "Could you write a haiku about rain?" in seen or "Can you write a haiku about rain?" in seen
    assert any(t.endswith("Write a haiku about rain.") for t in seen)
    assert len(seen) >= 8


def test_template_zh_makes_a_question_request() -> None:
    outs = {template_variant("写一首关于雨的短诗。", "zh", random.Random(s))[0] for s in range(60)}
    assert "你能写一首关于雨的短诗吗？" in outs
    assert "请写一首关于雨的短诗。" in outs
    assert "写一首关于雨的短诗。" not in outs
    assert all("写一首关于雨的短诗" in o for o in outs)


def test_template_never_returns_the_same_instruction_or_doubles_a_prefix() -> None:
    for seed in range(50):
        text, _ = template_variant("Please write a haiku.", "en", random.Random(seed))
        assert text != "Please write a haiku."
        out, _ = template_variant("Task: list three prime numbers.", "en", random.Random(seed))
        assert not out.startswith("Task: Task:")


def test_template_is_reproducible_and_keeps_proper_nouns_in_other_forms() -> None:
    a = template_variant("Python is fun. Explain why.", "en", random.Random("k"))
    b = template_variant("Python is fun. Explain why.", "en", random.Random("k"))
    assert a == b
    assert "Python is fun. Explain why." in a[0]  # multi-sentence: only framing templates


def test_template_unsupported_language() -> None:
    assert template_variant("Écris un poème.", "fr", random.Random(0)) is None


def test_keyword_is_added_with_a_template_or_as_a_constraint() -> None:
    text, detail = keyword_variant("Write a haiku about rain", "en", ["gardening"], random.Random(1))
    assert text.startswith("Write a haiku about rain.") and "gardening" in text
    assert detail == {"keyword": "gardening"}
    text, detail = keyword_variant("Write a haiku about rain.", "en", ["Use no more than 20 words."],
                                   random.Random(1))
    assert text == "Write a haiku about rain. Use no more than 20 words."
    assert detail == {"constraint": "Use no more than 20 words."}


def test_keyword_zh_and_script_matching() -> None:
    kws = ["finance", "金融", "回答不超过一百字。"]
    outs = {keyword_variant("写一首关于雨的短诗", "zh", kws, random.Random(s))[0] for s in range(30)}
    assert all(o.startswith("写一首关于雨的短诗。") for o in outs)
    assert not any("finance" in o for o in outs)  # a Chinese instruction takes Chinese entries
    assert "写一首关于雨的短诗。回答不超过一百字。" in outs
    assert any("“金融”" in o for o in outs)


def test_keyword_already_present_is_not_added() -> None:
    assert keyword_variant("Explain finance basics.", "en", ["finance"], random.Random(0)) is None
    assert keyword_variant("Explain finance basics.", "en", [], random.Random(0)) is None


@pytest.mark.parametrize("entry, expected", [
    ("finance", False), ("machine learning", False), ("Answer in under 100 words.", True),
    ("回答不超过一百字。", True), ("金融", False), ("Is it safe?", True),
])
def test_is_constraint(entry: str, expected: bool) -> None:
    assert is_constraint(entry) is expected
