"""The reply parsers on replies shaped like what real models answer, in English and Chinese."""

from __future__ import annotations

import re

import pytest

from sftdata.generate.parse import (
    Instance,
    Task,
    Unparsed,
    parse_instances,
    parse_instructions,
    parse_tasks,
    parse_yes_no,
)

# ---------------------------------------------------------------- instruction lists

NUMBERING_EN = """Sure! Here are some more tasks:

9. Write a haiku about autumn leaves.
10) Explain how a bill becomes law in the United States.
11、Translate the sentence into French.
(12) Sort the numbers in ascending order.
**13.** Give three tips for staying healthy.
Task 14: Summarize the article in two sentences.

I hope these tasks are helpful!"""

NUMBERING_ZH = """好的，以下是新的任务：
9. 写一首关于春天的七言绝句。
10）解释什么是光合作用。
11、把下面的句子翻译成英文。
（12）列出三种常见的水果。
**13.** 给出三条保持健康的建议。
任务14：用两句话总结这篇文章。
第15题：比较猫和狗作为宠物的优缺点。

希望这些任务对你有帮助！"""


def test_every_numbering_style_english():
    assert parse_instructions(NUMBERING_EN).items == [
        "Write a haiku about autumn leaves.",
        "Explain how a bill becomes law in the United States.",
        "Translate the sentence into French.",
        "Sort the numbers in ascending order.",
        "Give three tips for staying healthy.",
        "Summarize the article in two sentences.",
    ]


def test_every_numbering_style_chinese():
    assert parse_instructions(NUMBERING_ZH).items == [
        "写一首关于春天的七言绝句。", "解释什么是光合作用。", "把下面的句子翻译成英文。", "列出三种常见的水果。",
        "给出三条保持健康的建议。", "用两句话总结这篇文章。", "比较猫和狗作为宠物的优缺点。",
    ]


def test_continuation_of_the_prompt_number_without_a_marker():
    reply = " Describe the water cycle to a ten-year-old.\n10. List five fruits that are red.\n11. Name a famous bridge."
    assert parse_instructions(reply).items == [
        "Describe the water cycle to a ten-year-old.", "List five fruits that are red.", "Name a famous bridge."]


def test_numbering_that_restarts_and_skips():
    reply = "1. Plan a three-day trip to Rome.\n2. Write a limerick about a cat.\n\n1. Convert 3 miles to km.\n7. Name the largest ocean."
    assert parse_instructions(reply).items == [
        "Plan a three-day trip to Rome.", "Write a limerick about a cat.", "Convert 3 miles to km.",
        "Name the largest ocean."]


def test_instruction_labels_with_ascii_and_full_width_colons():
    reply = "9. Instruction: Write a cover letter for a nursing job.\n10. 指令：总结下面这段话的主要内容。\n11. **Instruction:** Rank the planets by size.\n12. 指令: 写一段产品介绍。"
    assert parse_instructions(reply).items == [
        "Write a cover letter for a nursing job.", "总结下面这段话的主要内容。", "Rank the planets by size.",
        "写一段产品介绍。"]


def test_labelled_blocks_without_numbers_keep_only_the_instruction():
    reply = ("Instruction: Classify the tweet's sentiment.\nInput: I love rainy days!\n\n"
             "Instruction: Name three prime numbers.\nInput: <noinput>")
    assert parse_instructions(reply).items == ["Classify the tweet's sentiment.", "Name three prime numbers."]


def test_code_fence_and_bold_titles():
    reply = ("Here you go:\n```\n1. **Creative writing:** Write a short story about a dragon.\n"
             "2. **Math**: What is 15% of 80?\n3. \"Find the capital of Peru.\"\n```\nLet me know if you need more!")
    assert parse_instructions(reply).items == [
        "Write a short story about a dragon.", "What is 15% of 80?", "Find the capital of Peru."]


def test_markdown_headings_and_bold_numbers():
    reply = "### 9. Explain gravity to a child.\n**10. Write a tweet announcing a sale.**\n#### Task 11 - Describe rain."
    assert parse_instructions(reply).items == [
        "Explain gravity to a child.", "Write a tweet announcing a sale.", "Describe rain."]


def test_bullets_and_bare_lines_when_nothing_is_numbered():
    assert parse_instructions("- Write a limerick about tea\n- Convert 5 km to miles").items == [
        "Write a limerick about tea", "Convert 5 km to miles"]
    assert parse_instructions("写一首关于大海的诗。\n解释什么是通货膨胀。").items == ["写一首关于大海的诗。", "解释什么是通货膨胀。"]


def test_doubled_numbering_and_chinese_ordinals():
    reply = "9. 1. Balance the chemical equation.\n10. Task 3: Write a limerick.\n11. 第一次世界大战的起因是什么？\n第12题：写一首诗。"
    assert parse_instructions(reply).items == [
        "Balance the chemical equation.", "Write a limerick.", "第一次世界大战的起因是什么？", "写一首诗。"]


def test_refusals_are_not_items():
    assert parse_instructions("I'm sorry, but I can't help with that.").unparsable
    assert parse_instructions("抱歉，我无法完成这个请求。").unparsable
    assert parse_instances("I'm sorry, I cannot provide examples for this task.").unparsable


def test_decimal_numbers_are_not_markers():
    assert parse_instructions("9. Convert 1.5 kg to pounds.\n10. Round 3.14159 to two decimals.").items == [
        "Convert 1.5 kg to pounds.", "Round 3.14159 to two decimals."]


def test_empty_and_unparsable_items_are_kept_as_unparsed():
    parsed = parse_instructions("9. Write a song about trains.\n10. Instruction:\n11. ???")
    assert parsed.items == ["Write a song about trains."]
    assert [u.why for u in parsed.unparsed] == ["empty item", "item holds no words"]
    assert parsed.unparsed[0].raw == "Instruction:"


def test_wholly_unparsable_reply_is_one_unparsed_entry():
    parsed = parse_instructions("...\n???")
    assert parsed.unparsable and len(parsed.entries) == 1 and parsed.entries[0].raw == "...\n???"
    assert parse_instructions("").entries == () and not parse_instructions("").unparsable
    assert parse_instructions("Sure! Here are some tasks:").unparsable


def test_json_replies():
    parsed = parse_instructions('```json\n["Write a song", {"instruction": "Plan a trip"}, {"x": 1}]\n```')
    assert parsed.items == ["Write a song", "Plan a trip"]
    assert isinstance(parsed.entries[2], Unparsed)


def test_multi_paragraph_item_keeps_its_first_paragraph():
    reply = "9. Summarize the following text.\n\nThe text goes here and is long.\n10. Name a river."
    assert parse_instructions(reply).items == ["Summarize the following text.", "Name a river."]


def test_chatter_between_items_and_after_the_last():
    reply = "Here are 2 tasks:\n1. Write a riddle.\n2. Describe a sunset.\n\nThese tasks cover different skills."
    assert parse_instructions(reply).items == ["Write a riddle.", "Describe a sunset."]


# ---------------------------------------------------------------- complete tasks (Alpaca mode)

ALPACA_EN = """Sure! Here are 3 tasks:

Task 4
Instruction: Give three tips for staying healthy.
Input: <noinput>
Output: 1. Eat a balanced diet.
2. Exercise regularly.
3. Get enough sleep.

Task 5
Instruction: Classify the sentiment of the sentence.
Input: I love this movie!
Output: Positive

Task 6
Instruction: Translate to French.
Input: Good morning
Output: Bonjour

I hope these help!"""

ALPACA_ZH = """任务4
指令：写一句关于秋天的诗。
输入：无输入
输出：秋风扫落叶，寒露湿衣襟。

任务5
指令：判断下面句子的情感。
输入：这部电影太精彩了！
输出：正面

希望这些任务对你有帮助！"""


def test_alpaca_format_english():
    assert parse_tasks(ALPACA_EN).items == [
        Task("Give three tips for staying healthy.", "", "1. Eat a balanced diet.\n2. Exercise regularly.\n3. Get enough sleep.",
             parse_tasks(ALPACA_EN).items[0].raw),
        Task("Classify the sentiment of the sentence.", "I love this movie!", "Positive", parse_tasks(ALPACA_EN).items[1].raw),
        Task("Translate to French.", "Good morning", "Bonjour", parse_tasks(ALPACA_EN).items[2].raw),
    ]


def _triples(text: str) -> list[tuple[str, str, str]]:
    return [(t.instruction, t.input, t.output) for t in parse_tasks(text).items]


def test_alpaca_format_chinese():
    assert _triples(ALPACA_ZH) == [("写一句关于秋天的诗。", "", "秋风扫落叶，寒露湿衣襟。"),
                                   ("判断下面句子的情感。", "这部电影太精彩了！", "正面")]


def test_alpacas_own_numbered_field_format_with_separators():
    reply = ("###\n1. Instruction: Rewrite the sentence in passive voice.\n1. Input:\nThe cat chased the mouse.\n"
             "1. Output:\nThe mouse was chased by the cat.\n###\n2. Instruction: Name the capital of Japan.\n"
             "2. Input:\n<noinput>\n2. Output:\nTokyo\n###")
    assert _triples(reply) == [("Rewrite the sentence in passive voice.", "The cat chased the mouse.",
                                "The mouse was chased by the cat."), ("Name the capital of Japan.", "", "Tokyo")]


def test_bold_labels_numbered_headers_and_no_input_spellings():
    reply = ("**1. Write a haiku about rain**\n**Input:** N/A\n**Output:** Soft rain on the roof\n\n"
             "**2. Add the numbers**\nInput: 2, 3\nOutput: 5\n\n3. Name a color.\nInput: None\nOutput: Blue\n\n"
             "4. 说出一种水果。\n【输入】无\n【输出】苹果")
    assert _triples(reply) == [("Write a haiku about rain", "", "Soft rain on the roof"),
                               ("Add the numbers", "2, 3", "5"), ("Name a color.", "", "Blue"),
                               ("说出一种水果。", "", "苹果")]


def test_output_with_a_numbered_list_is_not_split():
    reply = ("Task 1: Give steps to boil an egg.\nInput: <noinput>\nOutput:\n1. Boil water.\n2. Add the egg.\n"
             "3. Wait 9 minutes.\nTask 2: Name a planet.\nInput: <noinput>\nOutput: Mars")
    assert _triples(reply) == [("Give steps to boil an egg.", "", "1. Boil water.\n2. Add the egg.\n3. Wait 9 minutes."),
                               ("Name a planet.", "", "Mars")]


def test_task_without_output_is_a_parse_error_with_raw_text():
    parsed = parse_tasks("Task 1: Explain gravity.\nOutput: Gravity pulls things together.\n"
                         "Task 2: Broken task.\nInput: something")
    assert _triples("Task 1: Explain gravity.\nOutput: Gravity pulls things together.") == [
        ("Explain gravity.", "", "Gravity pulls things together.")]
    assert [type(e) for e in parsed.entries] == [Task, Unparsed]
    assert parsed.unparsed[0].raw == "Task 2: Broken task.\nInput: something"
    assert parsed.unparsed[0].why == "task without an output"


def test_json_tasks_in_a_fence():
    reply = '```json\n[{"instruction": "Name a fruit", "input": "", "output": "Apple"}, {"instruction": "x"}]\n```'
    parsed = parse_tasks(reply)
    assert _triples(reply) == [("Name a fruit", "", "Apple")] and len(parsed.unparsed) == 1


def test_nooutput_marker_becomes_an_empty_output():
    assert _triples("Instruction: Show me the photo.\nInput: <noinput>\nOutput: <nooutput>") == [
        ("Show me the photo.", "", "")]


def test_unparsable_task_reply():
    assert parse_tasks("I cannot help with that request.").unparsable
    assert parse_tasks("抱歉，我无法完成这个请求。").unparsable


# ---------------------------------------------------------------- instances

def _pairs(text: str, output_first: bool = False) -> list[tuple[str, str]]:
    return [(i.input, i.output) for i in parse_instances(text, output_first).items]


def test_input_first_examples_english_and_chinese():
    en = ("Example 1\nInput: The food was cold and bland.\nOutput: Negative\n\n"
          "Example 2\nInput: Great service and tasty dishes!\nOutput: Positive")
    zh = "示例1\n输入：北京是中国的首都吗？\n输出：是的，北京是中国的首都。\n示例2\n输入：1+1等于几？\n输出：2"
    assert _pairs(en) == [("The food was cold and bland.", "Negative"), ("Great service and tasty dishes!", "Positive")]
    assert _pairs(zh) == [("北京是中国的首都吗？", "是的，北京是中国的首都。"), ("1+1等于几？", "2")]


def test_output_first_class_labels_english_and_chinese():
    en = ("Class label: Positive\nInput: I really enjoyed the concert.\n"
          "Class label: **Negative**\nInput: The product broke after one day.")
    zh = "类别标签：正面\n输入：这家餐厅的服务很好。\n类别标签：负面\n输入：快递太慢了。"
    assert _pairs(en, True) == [("I really enjoyed the concert.", "Positive"), ("The product broke after one day.", "Negative")]
    assert _pairs(zh, True) == [("这家餐厅的服务很好。", "正面"), ("快递太慢了。", "负面")]


def test_output_first_with_input_before_label():
    assert _pairs("Input: 17\nLabel: Odd\nInput: 48\nLabel: Even", True) == [("17", "Odd"), ("48", "Even")]


def test_unlabelled_reply_is_one_output_without_input():
    reply = "Here is an example:\nThe leaves fall softly\nAutumn whispers through the trees"
    assert _pairs(reply) == [("", "The leaves fall softly\nAutumn whispers through the trees")]


def test_no_input_spellings_in_instances():
    reply = ("Example 1\nInput: <noinput>\nOutput: A\nExample 2\nInput: None\nOutput: B\n"
             "Example 3\n输入：无输入\n输出：C\nExample 4\nInput: N/A\nOutput: D")
    assert _pairs(reply) == [("", "A"), ("", "B"), ("", "C"), ("", "D")]


def test_numbered_list_inside_an_output_before_the_next_input():
    reply = "Input: List: 3, 1, 2\nOutput:\n1. 1\n2. 2\n3. 3\nInput: List: 9, 8\nOutput: 8, 9"
    assert _pairs(reply) == [("List: 3, 1, 2", "1. 1\n2. 2\n3. 3"), ("List: 9, 8", "8, 9")]


def test_echoed_task_line_is_ignored_and_closing_chatter_dropped():
    reply = ("Task: Sort the numbers.\nExample 1:\nInput: 3 1 2\nOutput: 1 2 3\n\n"
             "I hope this helps! Let me know if you need more examples.")
    assert _pairs(reply) == [("3 1 2", "1 2 3")]


def test_code_in_an_output_keeps_its_fence():
    reply = "Example 1\nInput: Reverse a string in Python.\nOutput:\n```python\ns[::-1]\n```\n\nExample 2\nInput: x\nOutput: y"
    assert _pairs(reply) == [("Reverse a string in Python.", "```python\ns[::-1]\n```"), ("x", "y")]


def test_instance_without_output_is_unparsed():
    parsed = parse_instances("Example 1\nInput: a\nOutput: b\nExample 2\nInput: c")
    assert [type(e) for e in parsed.entries] == [Instance, Unparsed]
    assert parsed.unparsed[0].raw == "Example 2\nInput: c"


def test_json_instances():
    assert _pairs('[{"input": "2+2", "output": "4"}, {"class_label": "Spam", "input": "WIN NOW"}]') == [
        ("2+2", "4"), ("WIN NOW", "Spam")]


# ---------------------------------------------------------------- classification answers

@pytest.mark.parametrize("answer, expected", [
    ("Yes", True), ("yes.", True), ("**Yes**", True), ("Yes, it has a fixed set of labels.", True),
    ("No", False), ("No.", False), ("no, the output is free text", False),
    ("Is it classification? No", False), ("The answer is yes.", True), ("It is not a classification task.", False),
    ("是", True), ("是的，这是分类任务", True), ("否", False), ("不是。", False), ("这不是分类任务", False),
    ("是否为分类任务？是", True), ("答案：否", False),
    ("Maybe", None), ("Not sure", None), ("Task: write a poem", None), ("", None), ("不确定", None),
    ("这是一个生成任务，不是分类任务，但也是一种分类", None),
])
def test_yes_no(answer, expected):
    assert parse_yes_no(answer) is expected


# ---------------------------------------------------------------- contract

@pytest.mark.parametrize("text", ["", " ", "\n\n", "1.", "###", "```", "```\n```", "**", "：", "Input:", "【】",
                                  "1. Instruction:\n1. Input:\n1. Output:", "\x00\ufeff", "一、", "(1)", "[]", "{}"])
def test_replies_with_nothing_in_them_yield_nothing_usable(text):
    """Markup, numbering and labels alone: no instruction, no task, no instance with content, no verdict;
    a non-blank reply comes back whole as Unparsed (rejected with its reason, never silently dropped)."""
    for parsed in (parse_instructions(text), parse_tasks(text)):
        assert all(isinstance(e, Unparsed) for e in parsed.entries), parsed.entries
        assert [e.raw for e in parsed.entries] == ([text.strip()] if text.strip() else [])
        assert all(e.why for e in parsed.entries)
    for parsed in (parse_instances(text), parse_instances(text, output_first=True)):
        assert all(isinstance(e, (Instance, Unparsed)) for e in parsed.entries)
        for entry in parsed.entries:
            if isinstance(entry, Instance):  # what the instance rules then reject: nothing to learn from
                assert not re.search(r"[^\W_]", entry.input + entry.output), entry
    assert parse_yes_no(text) is None


# ---------------------------------------------------------------- fuzz: pieces real replies are made of

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PIECES = ["1.", "2)", "3、", "(4)", "**5.**", "Task 6:", "任务7：", "Instruction:", "指令：", "Input:", "输入：",
           "Output:", "输出：", "Class label:", "类别标签：", "<noinput>", "无输入", "N/A", "```", "```json", "###",
           "---", "Example 1", "示例2", "**", "【输入】", "Sure! Here are", "I hope this helps!", "Yes", "否", "\n",
           "\n\n", " ", "：", ":", "[", "{", "\"", "word", "文字", "1.5", "\t", "\r\n", "\u3000", "\u200b"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_PIECES) | st.text(max_size=8), max_size=40))
def test_parsers_hold_their_contract_on_reply_fragments(pieces):
    text = "".join(pieces)
    for parsed in (parse_instructions(text), parse_tasks(text), parse_instances(text),
                   parse_instances(text, output_first=True)):
        assert all(isinstance(e, (str, Task, Instance, Unparsed)) for e in parsed.entries)
        assert all(e.raw.strip() for e in parsed.unparsed)
        if text.strip() and not parsed.items:
            assert parsed.unparsable
    assert parse_yes_no(text) in (True, False, None)
