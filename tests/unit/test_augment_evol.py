"""Evol-Instruct pieces: reading rewrites, the equality verdict, and each elimination rule, in English and Chinese."""

from __future__ import annotations

import re

import pytest

from sftdata.augment import evol
from sftdata.augment.prompting import render
from sftdata.core.paths import load_prompt
from sftdata.core.records import Record

EN = Record(instruction="Write a haiku about rain.", output="Rain taps on the roof...")
EN_INPUT = Record(instruction="Summarize the text.", input="The city council met on Monday.")
ZH = Record(instruction="写一首关于雨的短诗。", output="细雨……")
MARK_EN = "#Rewritten Instruction#:"
MARK_ZH = "#改写后的指令#："


# ------------------------------------------------------------------ prompts

def test_render_blocks_and_fields() -> None:
    tpl = "A {x}\n[[y]]\nY={y}\n[[/y]]\n[[!y]]no y[[/!y]]\n\nEnd {unknown}"
    assert render(tpl, x="1", y="2") == "A 1\n\nY=2\n\nEnd {unknown}"
    assert render(tpl, x="1", y="") == "A 1\n\nno y\n\nEnd {unknown}"
    # user text is not expanded again
    assert render("{x}", x="{x} [[y]]a[[/y]]", y="") == "{x} [[y]]a[[/y]]"


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("op", evol.EVOL_OPS + (evol.PARAPHRASE,))
def test_every_rewrite_prompt_renders_with_and_without_input(lang: str, op: str) -> None:
    for parent in (Record(instruction="INSTR-X"), Record(instruction="INSTR-X", input="INPUT-Y")):
        text = evol.rewrite_prompt(op, lang, parent)
        assert "INSTR-X" in text and ("INPUT-Y" in text) == bool(parent.input)
        assert "[[" not in text and "{instruction}" not in text and "\n\n\n" not in text
        assert re.fullmatch(r"[#＃][^#＃]+[#＃][:：]", text.rsplit("\n", 1)[-1])  # ends on the reply marker
    if lang == "zh":
        assert len(re.findall(r"[\u4e00-\u9fff]", load_prompt("zh", evol.prompt_name(op)))) > 100


def test_answer_and_equal_prompts() -> None:
    assert evol.answer_prompt("en", "Summarize.", "") == "Summarize."
    assert evol.answer_prompt("zh", "总结。", "一段文字") == "总结。\n\n一段文字"
    eq = evol.equal_prompt("zh", "甲", "乙")
    assert "甲" in eq and "乙" in eq and "相同" in eq


# ------------------------------------------------------------------ parsing rewrites

@pytest.mark.parametrize("reply, expected", [
    ("Write a haiku about rain that mentions a red umbrella.", "Write a haiku about rain that mentions a red umbrella."),
    ("#Rewritten Instruction#: Write a haiku about rain in spring.", "Write a haiku about rain in spring."),
    ("Rewritten Instruction:\nWrite a haiku about rain in spring.", "Write a haiku about rain in spring."),
    ("Sure! Here it is:\n\"Write a haiku about rain in spring.\"", "Write a haiku about rain in spring."),
    ("**Write a haiku about rain in spring.**\n\nI hope this helps!", "Write a haiku about rain in spring."),
    ("```\nWrite a haiku about rain in spring.\n```", "Write a haiku about rain in spring."),
    ("Instruction: Write a haiku about rain in spring.", "Write a haiku about rain in spring."),
])
def test_parse_rewrite_en(reply: str, expected: str) -> None:
    assert evol.parse_rewrite("constraints", reply, EN, MARK_EN) == (expected, "")


def test_parse_rewrite_zh() -> None:
    assert evol.parse_rewrite("deepen", "#改写后的指令#：写一首关于春雨的短诗，并说明雨的意象。", ZH, MARK_ZH) == \
        ("写一首关于春雨的短诗，并说明雨的意象。", "")
    assert evol.parse_rewrite("deepen", "好的，以下是改写：\n“写一首关于春雨的七言绝句。”", ZH, MARK_ZH) == \
        ("写一首关于春雨的七言绝句。", "")


def test_parse_keeps_parent_input_for_in_depth_ops_and_drops_an_echo() -> None:
    out = evol.parse_rewrite("constraints", "Summarize the text in one sentence.\nInput: The city council met.",
                             EN_INPUT, MARK_EN)
    assert out == ("Summarize the text in one sentence.", EN_INPUT.input)


def test_parse_breadth_takes_its_own_input() -> None:
    reply = "Classify the mood of the poem.\nInput: Grey clouds, a quiet street."
    assert evol.parse_rewrite("breadth", reply, EN, "#Created Instruction#:") == \
        ("Classify the mood of the poem.", "Grey clouds, a quiet street.")
    assert evol.parse_rewrite("breadth", "Name three rain gauges.\nInput: <noinput>", EN, "#Created Instruction#:") \
        == ("Name three rain gauges.", "")
    assert evol.parse_rewrite("breadth", "判断这首诗的情绪。\n输入：灰色的云，安静的街。", ZH, "#新创作的指令#：") == \
        ("判断这首诗的情绪。", "灰色的云，安静的街。")


def test_parse_complicate_input_replaces_the_input_only() -> None:
    out = evol.parse_rewrite("complicate-input", "Input: | day | mm |\n|---|---|\n| Mon | 12 |", EN_INPUT,
                             "#Rewritten Input#:")
    assert out == (EN_INPUT.instruction, "| day | mm |\n|---|---|\n| Mon | 12 |")
    assert evol.parse_rewrite("complicate-input", "   ", EN_INPUT, "#Rewritten Input#:") is None


def test_parse_nothing_left() -> None:
    assert evol.parse_rewrite("constraints", "", EN, MARK_EN) is None
    assert evol.parse_rewrite("constraints", "#Rewritten Instruction#:", EN, MARK_EN) is None


# ------------------------------------------------------------------ elimination rules

@pytest.mark.parametrize("text, phrase", [
    ("Rewrite the given prompt so it rhymes.", "given prompt"),
    ("#Rewritten Prompt#: Write a haiku.", "#Rewritten Prompt#"),
    ("Write a haiku. #Given Instruction#: Write a haiku.", "#Given Instruction#"),
    ("Here is the rewritten instruction: write a haiku", "rewritten instruction"),
    ("写一首诗。#改写后的指令#：写一首诗", "#改写后的指令#"),
    ("根据给定指令写一首诗", "给定指令"),
    ("按照改写后的指令完成任务", "改写后的指令"),
])
def test_copied_phrases(text: str, phrase: str) -> None:
    assert evol.copied_phrase(text).lower() == phrase.lower()


def test_copied_phrase_not_flagged_when_the_parent_has_it_or_it_is_another_word() -> None:
    assert evol.copied_phrase("Sort the given input in descending order.",
                              "Sort the given input.") is None
    assert evol.copied_phrase("Follow the given inputs and outputs.") is None
    assert evol.copied_phrase("Write a haiku about rain in spring.") is None
    assert evol.copied_phrase("写一首关于春雨的短诗。") is None


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_marker_of_our_prompts_counts_as_a_copy(lang: str) -> None:
    for name in evol.REWRITE_PROMPTS:
        for marker in re.findall(r"#[^#\n]+#", load_prompt(lang, name)):
            assert evol.copied_phrase(f"Write a poem. {marker}") is not None, marker


@pytest.mark.parametrize("reply, verdict", [
    ("Different", "different"), ("Same", "same"), ("same.", "same"), ("**Different**", "different"),
    ("Not equal", "different"), ("Equal", "same"), ("They are not the same.", "different"),
    ("The second one is different.", "different"), ("不同", "different"), ("相同", "same"),
    ("不相同", "different"), ("两条指令一样。", "same"), ("回答：不同", "different"), ("I cannot tell", None),
    ("", None),
])
def test_parse_equal(reply: str, verdict: str | None) -> None:
    assert evol.parse_equal(reply) == verdict


@pytest.mark.parametrize("answer", [
    "I'm sorry, but I can't help with that.",
    "Sorry, I don't have enough information to answer.",
    "I apologize, but that request is unclear.",
    "抱歉，我无法完成这个请求。",
    "对不起，这个问题我回答不了。",
])
def test_short_apologies_are_eliminated(answer: str) -> None:
    assert evol.is_apology(answer)
    assert evol.answer_elimination(answer)[0] == "apology"


def test_long_answers_with_sorry_are_kept() -> None:
    long_en = "Sorry for the wait. " + "Here is a detailed plan with many concrete steps. " * 12
    assert not evol.is_apology(long_en)
    long_zh = "抱歉久等了。" + "下面是一份详细的计划，包含很多具体的步骤。" * 8
    assert not evol.is_apology(long_zh)
    assert not evol.is_apology("The rain fell softly on the roof.")
    assert not evol.is_apology("细雨落在屋顶上。")


@pytest.mark.parametrize("answer", ["...", "!!! ??", "It is.", "The, of, and.", "the THE The", "。。。", "的了吗？",
                                    "我们的。", "Well, ok."])
def test_stopwords_only_answers_are_eliminated(answer: str) -> None:
    assert evol.only_stopwords(answer)
    assert evol.answer_elimination(answer)[0] == "stopwords_only"


@pytest.mark.parametrize("answer", ["Yes.", "No", "No.", "42", "Positive", "是的。", "不是", "没有", "可以", "雨",
                                    "It is raining.", "我们去公园。"])
def test_short_answers_with_content_are_kept(answer: str) -> None:
    assert not evol.only_stopwords(answer)
    assert evol.answer_elimination(answer) is None


def test_empty_answer() -> None:
    assert evol.answer_elimination("  \n") == ("empty_output", {})
