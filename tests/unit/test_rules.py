"""Filter rules in English and Chinese: what each must reject, and what it must leave alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftdata.core.errors import ConfigError
from sftdata.core.records import Record
from sftdata.filter.rules import (
    RULES,
    FilterConfig,
    check_instance,
    check_instruction,
    count_units,
    detect_lang,
)
from sftdata.filter.stage import filter_records

ROOT = Path(__file__).resolve().parents[2]
EN = FilterConfig(lang="en")
ZH = FilterConfig(lang="zh")


def reason(text: str, config: FilterConfig = EN) -> str | None:
    found = check_instruction(text, config)
    return found[0] if found else None


@pytest.mark.parametrize("text, expected", [
    ("Name three colors.", "length"),  # 3 words is not enough: "more than 3"
    ("Name three primary colors.", None),
    ("Give three tips for staying healthy.", None),
    ("Hi there friend", "length"),
    (" ".join(["word"] * 151), "length"),
    ("Describe the image below in detail.", "blacklist"),
    ("Draw a picture of a cat sitting on a mat.", "blacklist"),
    ("Please GO TO the website and report back.", "blacklist"),
    ("Create a flowchart for the hiring process.", "blacklist"),
    ("Write a program that prints the first ten primes.", "format"),
    ("- List three colors of the rainbow, please.", "format"),
    ("...and then summarize the article in one sentence.", "format"),
    ("Écris un poème sur la mer et le vent du soir.", "format"),  # English expected: non-ASCII start
    ("Escribe un poema sobre el mar y la luna llena esta noche.", "language"),
    ("请写一首关于秋天的短诗，不超过四行。", "language"),
])
def test_english_rules(text, expected):
    if expected is None:
        assert reason(text) is None
    else:
        assert reason(text) == expected, check_instruction(text, EN)


@pytest.mark.parametrize("text", [
    "Explain the drawbacks of working from home.",  # "draw" only inside a word
    "Write a short profile of a fictional chef.",  # "file" inside "profile"
    "Describe the mapping between keys and values in a dictionary.",
    "Summarize the main arguments of the essay in three bullet points.",
    '"Carpe diem" - what does this phrase mean and where does it come from?',
    "\u201cTo be or not to be\u201d: who wrote this line, and in which play?",  # an opening quote is fine
    "Write a poem about 北京 in the style of a haiku.",  # a Chinese name inside English
    'Translate "你好，世界" into English, please.',
    "Classify the sentiment of the following review as positive or negative.",
    "Fix the bug in this code: for i in range(10) print(i)",
])
def test_english_texts_left_alone(text):
    assert check_instruction(text, EN) is None


@pytest.mark.parametrize("text, expected", [
    ("翻译", "length"),  # 2 characters
    ("写诗", "length"),
    ("请描述这张图片里的内容。", "blacklist"),
    ("把这个文件转换成表格。", "blacklist"),
    ("为这个产品制作一个宣传视频脚本。", "blacklist"),
    ("，请写一首关于春天的诗。", "format"),
    ("编写一个程序计算斐波那契数列。", "format"),
    ("Write a short poem about the autumn wind.", "language"),
])
def test_chinese_rules(text, expected):
    assert reason(text, ZH) == expected, check_instruction(text, ZH)


@pytest.mark.parametrize("text", [
    "《红楼梦》的作者是谁？请简要介绍他的生平。",  # starts with a book-title mark: fine
    "“三思而后行”这句话是什么意思？",
    "解释 Python 中 list 和 tuple 的区别。",  # English terms inside Chinese
    "用Python写一个函数，判断一个数是否为质数。",
    "给出三个保持健康的建议。",
    "请把下面的句子翻译成英文：I love you.",
    "比较React和Vue的优缺点。",
    "什么是API？请举例说明。",
])
def test_chinese_texts_left_alone(text):
    assert check_instruction(text, ZH) is None


def test_length_counts_words_or_characters():
    assert count_units("Give three tips for staying healthy.") == (6, "words")
    assert count_units("给出三个建议") == (6, "chars")
    assert count_units("用Python写函数") == (5, "chars")
    assert reason("四个汉字", ZH) is None  # 4 > 3
    long_zh = "好" * 151
    assert reason(long_zh, ZH) == "length"
    assert reason(long_zh, FilterConfig(lang="zh", max_chars=300)) is None
    assert reason("好" * 10, FilterConfig(lang="zh", min_chars=10)) == "length"


def test_disabled_rules_and_extra_blacklist():
    text = "Describe the image below in detail."
    assert reason(text, FilterConfig(lang="en", disabled=frozenset({"blacklist"}))) is None
    assert reason("Explain how a bicycle gear works.", FilterConfig(lang="en", blacklist=("bicycle",))) == "blacklist"
    assert reason("介绍一下这款手机的功能。", FilterConfig(lang="zh", blacklist=("手机",))) == "blacklist"
    # no expected language: no language rule
    assert check_instruction("Escribe un poema sobre el mar y la luna llena.", FilterConfig()) is None
    assert check_instruction("Escribe un poema sobre el mar y la luna llena.", FilterConfig(),
                             expected_lang="en")[0] == "language"
    assert check_instruction("请写一首关于秋天的短诗。", FilterConfig(), expected_lang="zh-CN") is None
    assert check_instruction("Give three tips for staying healthy.", FilterConfig(), expected_lang="unknown") is None


def test_instance_rules():
    config = FilterConfig()
    assert check_instance(Record("Add the numbers.", "2 3", "5"), config) is None
    assert check_instance(Record("Say hi.", "", "  "), config) == ("empty_output", {})
    assert check_instance(Record("Repeat.", "same text", "same text"), config) == ("output_equals_input", {})
    assert check_instance(Record("List items.", "", "Here are the items:"), config)[0] == "ends_with_colon"
    assert check_instance(Record("列出要点。", "输入：", "好的"), config) == ("ends_with_colon", {"field": "input"})
    assert check_instance(Record("列出要点。", "", "要点如下："), config) == ("ends_with_colon", {"field": "output"})
    assert check_instance(Record("Time?", "", "10:30"), config) is None  # a colon inside is fine
    off = FilterConfig(disabled=frozenset({"empty_output"}))
    assert check_instance(Record("Say hi.", "", ""), off) is None


@pytest.mark.parametrize("kwargs, option", [
    ({"rouge_threshold": 1.5}, "--rouge-threshold"),
    ({"rouge_threshold": -0.1}, "--rouge-threshold"),
    ({"rouge_tokenizer": "spaces"}, "--rouge-tokenizer"),
    ({"lang": "xx"}, "--lang"),
    ({"min_words": 10, "max_words": 5}, "--max-words"),
    ({"max_chars": 0}, "--max-chars"),
    ({"disabled": frozenset({"nonsense"})}, "--no-rule"),
])
def test_config_validation_names_the_option(kwargs, option):
    with pytest.raises(ConfigError) as info:
        FilterConfig(**kwargs).validate()
    assert info.value.option == option


@pytest.mark.parametrize("text, lang", [
    ("Give three tips for staying healthy.", "en"),
    ("Sort these numbers", "en"),
    ("请写一首关于秋天的短诗。", "zh"),
    ("解释 Python 中的 list comprehension 和 generator expression 的区别", "zh"),
    ("What does 加油 mean in Chinese?", "en"),
    ("日本の首都はどこですか？", "ja"),
    ("한국의 수도는 어디입니까?", "ko"),
    ("Escribe un poema sobre el mar y la luna llena esta noche.", "es"),
    ("Schreibe ein Gedicht über das Meer und den Mond am Abend.", "de"),
    ("1234 5678", "unknown"),
])
def test_detect_lang(text, lang):
    assert detect_lang(text) == lang
    assert detect_lang(text) == lang  # deterministic


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_detect_lang_is_right_on_every_seed(lang):
    path = ROOT / "seeds" / f"{lang}.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not written yet")
    instructions = [json.loads(line)["instruction"] for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
    wrong = [(text, detect_lang(text)) for text in instructions if detect_lang(text) != lang]
    assert not wrong, f"{len(wrong)}/{len(instructions)} misdetected: {wrong[:5]}"


def test_seeds_pass_every_instruction_rule():
    for lang in ("en", "zh"):
        path = ROOT / "seeds" / f"{lang}.jsonl"
        if not path.exists():
            continue
        config = FilterConfig(lang=lang)
        for line in path.read_text(encoding="utf-8").splitlines():
            text = json.loads(line)["instruction"]
            assert check_instruction(text, config) is None, (text, check_instruction(text, config))


def test_filter_records_in_both_languages():
    records = [
        Record("Give three tips for staying healthy.", output="Eat well, sleep, move.", lang="en"),
        Record("Give three tips for staying healthy!", output="Drink water.", lang="en"),  # rouge
        Record("Describe the image in detail please.", output="A cat.", lang="en"),  # blacklist
        Record("Give three tips for staying healthy.", output="Eat well, sleep, move.", lang="en"),  # duplicate
        Record("Give three tips for staying healthy.", input="for kids", output="Play outside.", lang="en"),
        Record("Give three tips for staying healthy.", input="for kids", output="Nap.", lang="en"),  # duplicate
        Record("请写一首关于秋天的短诗。", output="秋风起，落叶黄。", lang="zh"),
        Record("请写一首关于春天的短诗。", output="春风吹，花儿开。", lang="zh"),  # rouge: one character changed
        Record("列出五种常见的水果。", output="苹果、香蕉、橙子、葡萄、西瓜。", lang="zh"),
        Record("Name four planets of the solar system.", output="", lang="en"),  # empty output
    ]
    results = list(filter_records(records, FilterConfig(), against=["Name the largest ocean on Earth."]))
    reasons = [verdict[0] if verdict else None for _, verdict in results]
    # a task's instances (same instruction, other input) stay; the same prompt twice does not
    assert reasons == [None, "rouge", "blacklist", "duplicate", None, "duplicate", None, "rouge", None,
                       "empty_output"]
    kept = results[0][0]
    assert "rouge_max" in kept.meta and "most_similar" in kept.meta
    assert records[0].meta == {}  # the caller's record is not modified
    rouge = results[7][1][1]
    assert rouge["most_similar"] == "请写一首关于秋天的短诗。" and rouge["score"] > 0.7
    assert set(reasons) - {None} <= set(RULES)


def test_filter_records_streams_and_preloads(tmp_path):
    against = ["Give three tips for staying healthy."]
    records = (Record(f"Explain topic number {i} in simple words for a child.", output="ok", lang="en")
               for i in range(1500))  # a generator: more than one chunk, never materialized by the caller
    stream = filter_records(records, FilterConfig(rouge_threshold=0.9), against=against)
    first = next(stream)
    assert first[1] is None
    rest = list(stream)
    assert len(rest) == 1499 and all(v is None or v[0] == "rouge" for _, v in rest)
    copy = list(filter_records([Record("Give three tips for staying healthy.", output="x")], FilterConfig(),
                               against=against))
    assert copy[0][1][0] == "rouge" and copy[0][1][1]["score"] == 1.0
