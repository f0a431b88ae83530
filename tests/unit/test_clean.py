"""Each clean rule on English and Chinese text: what it changes or removes, and what it must leave alone."""

from __future__ import annotations

import random

import pytest

from sftdata.clean.rules import (
    length_outliers,
    refusal,
    repeats_instruction,
    repetition,
    tokens,
    truncated,
)
from sftdata.clean.stage import CleanConfig, CleanStats, clean_records, normalize_record, removal
from sftdata.clean.text import (
    collapse_whitespace,
    is_code_task,
    mask_pii,
    nfkc,
    strip_control,
    strip_html,
    unwrap_code_fence,
)
from sftdata.core.errors import ConfigError
from sftdata.core.records import Record


def rec(instruction: str, output: str, input: str = "", **kw) -> Record:
    return Record(instruction=instruction, input=input, output=output, **kw)


# ---------------------------------------------------------------- normalization: nfkc

@pytest.mark.parametrize("text, expected", [
    ("ｆｕｌｌ ｗｉｄｔｈ １２３", "full width 123"),
    ("Hello，world！", "Hello,world!"),              # full-width punctuation in English text
    ("ﬁnance", "finance"),                          # ligature
    ("price:\u00a0100", "price: 100"),              # no-break space
    ("ＡＢＣ１２３是编号。", "ABC123是编号。"),          # full-width letters/digits in Chinese text
    ("ｶﾀｶﾅ", "カタカナ"),                             # half-width katakana
])
def test_nfkc_normalizes(text, expected):
    assert nfkc(text) == expected


@pytest.mark.parametrize("text", [
    "你好，世界！（测试）：是；吗？",                      # full-width Chinese punctuation stays
    "他说……然后走了。",                                  # the Chinese ellipsis stays
    "E = mc² and H₂O",                                 # super/subscripts carry meaning
    "① first ② second",                                # circled numbers
    "½ cup",                                           # fractions
    "ℝ is the set of reals",                           # math letters
    "ㅋㅋ 좋아요",                                        # Hangul compatibility jamo stay legible
    "plain ascii text",
])
def test_nfkc_leaves_meaningful_forms(text):
    assert nfkc(text) == text


# ---------------------------------------------------------------- normalization: control characters

def test_nfkc_uses_the_record_language():
    record = rec("找出规律，填写下一个数。", "56", input="2，6，12，20，30，？", lang="zh")
    assert normalize_record(record, CleanConfig()) is record
    english = rec("Continue the sequence.", "56", input="2，6，12，20，30，？", lang="en")
    assert normalize_record(english, CleanConfig()).input == "2,6,12,20,30,?"


def test_control_and_zero_width_removed():
    assert strip_control("a\u200bb\ufeffc\x00d\x07e\u00adf") == "abcdef"
    assert strip_control("中\u200b文\u2060字") == "中文字"
    assert strip_control("line1\r\nline2\rline3") == "line1\nline2\nline3"


def test_control_keeps_tabs_newlines_and_joiners():
    text = "a\tb\nc 👨\u200d👩\u200d👧 می\u200cخواهم"  # ZWJ builds the emoji; ZWNJ is Persian spelling
    assert strip_control(text) == text


# ---------------------------------------------------------------- normalization: whitespace

def test_whitespace_collapses_and_trims():
    assert collapse_whitespace("  The   sea  is    vast.   \n\n\n\nNew   paragraph.  ") == \
        "The sea is vast.\n\nNew paragraph."
    assert collapse_whitespace("  大海   很  大。 \n\n\n\n真的。 ") == "大海 很 大。\n\n真的。"


def test_whitespace_keeps_indentation_tabs_and_fences():
    text = "Steps:\n    indented   line\nname\tage\tcity\n```\nx  =  1\n    y   = 2\n```"
    assert collapse_whitespace(text) == "Steps:\n    indented line\nname\tage\tcity\n```\nx  =  1\n    y   = 2\n```"
    code = 'print("a   b")\n    return  x\n\n\ndef g():\n    pass'
    assert collapse_whitespace(code, code=True) == code
    fenced = "Use this:\n\n\n\n```python\nimport os\n\n\ndef f():\n    pass  # two spaces\n```"
    assert collapse_whitespace(fenced) == "Use this:\n\n```python\nimport os\n\n\ndef f():\n    pass  # two spaces\n```"


@pytest.mark.parametrize("instruction, output", [
    ("如何在Python中给列表去重？", "可以这样：\n\nunique = list(dict.fromkeys(items))\nprint(unique)  # [3, 1, 2]"),
    ("How do I dedupe a list?", "Like this:\n\nunique = list(dict.fromkeys(items))\nprint(unique)  # [3, 1]\n"
                                "return unique"),  # no code word in the task, but the reply is code
])
def test_whitespace_keeps_code_spacing(instruction, output):
    assert normalize_record(rec(instruction, output), CleanConfig()).output == output


# ---------------------------------------------------------------- normalization: HTML

def test_html_tags_and_entities_removed():
    assert strip_html("<p>Fish &amp; chips</p><br/>are <b>tasty</b>.") == "\nFish & chips\n\nare tasty."
    assert strip_html("<div>大海&nbsp;很<span>大</span>。</div>") == "\n大海 很大。\n"
    assert strip_html("&lt;3 &#39;quoted&#39; &#x4e2d;") == "<3 'quoted' 中"


@pytest.mark.parametrize("text", [
    "a < b and c > d",                 # comparisons
    "AT&T and R&D",                    # ampersands that are not entities
    "?a=1&copy=2",                     # an entity name without its semicolon
    "List<String> and Map<K, V>",      # generics are not HTML tags
    "如果 x<y 并且 y>z",
])
def test_html_leaves_non_html_alone(text):
    assert strip_html(text) == text


def test_html_kept_in_markup_tasks():
    for instruction in ("Write an HTML page with a title.", "写一个网页的HTML代码。", "What does the <b> tag do?"):
        record = rec(instruction, "<html><body><p>Hello</p></body></html>")
        assert is_code_task(record.instruction)
        assert normalize_record(record, CleanConfig()).output == record.output


# ---------------------------------------------------------------- normalization: code fence

def test_code_fence_unwrapped_when_not_code():
    assert unwrap_code_fence("```\nThe sea is vast.\n```", code_task=False) == "The sea is vast."
    assert unwrap_code_fence("```text\n大海很大。\n```\n", code_task=False) == "大海很大。"
    record = rec("Describe the sea in one sentence.", "```\nThe  sea is vast.\n```")
    cleaned = normalize_record(record, CleanConfig())
    assert cleaned.output == "The sea is vast."
    assert "code-fence" in cleaned.meta["cleaned"]


@pytest.mark.parametrize("instruction, output", [
    ("Write a Python function that adds two numbers.", "```\ndef add(a, b):\n    return a + b\n```"),
    ("写一个Python函数求和。", "```\ndef add(a, b):\n    return a + b\n```"),
    ("Describe the sea.", "```python\nprint('sea')\n```"),          # a real language tag
    ("Describe the sea.", "Here:\n```\nThe sea.\n```\nDone."),       # not the whole reply
    ("Describe the sea.", "```\none\n```\n```\ntwo\n```"),           # two blocks
])
def test_code_fence_left_alone(instruction, output):
    assert normalize_record(rec(instruction, output), CleanConfig()).output == output


def test_normalization_rules_switch_off():
    record = rec("Describe  it", "<b>Ｂｉｇ</b>  sea\u200b")
    assert normalize_record(record, CleanConfig.from_options(["normalize"])) is record
    only_html_off = normalize_record(record, CleanConfig.from_options(["html"]))
    assert only_html_off.output == "<b>Big</b> sea"
    stats = CleanStats()
    normalize_record(record, CleanConfig(), stats)
    assert stats.normalized == {"html": 1, "nfkc": 1, "whitespace": 1, "control-chars": 1}


# ---------------------------------------------------------------- removal: refusals

@pytest.mark.parametrize("output, kind", [
    ("I'm sorry, but I can't help with that.", "refusal"),
    ("Sorry, I cannot provide real-time information.", "refusal"),
    ("Unfortunately, I don't have access to the internet.", "refusal"),
    ("I'm sorry, but as an AI, I cannot browse the web.", "refusal"),
    ("I am unable to answer that question.", "refusal"),
    ("As an AI language model, I do not have personal opinions. However, many people like blue.", "disclaimer"),
    ("抱歉，我无法满足这个请求。", "refusal"),
    ("对不起，作为一个人工智能，我不能提供医疗建议。", "refusal"),
    ("我无法回答这个问题。", "refusal"),
    ("作为一个AI语言模型，我没有个人喜好。不过很多人喜欢蓝色。", "disclaimer"),
])
def test_refusals_removed(output, kind):
    detail = refusal(rec("What is your favourite colour?", output))
    assert detail is not None and detail["kind"] == kind


@pytest.mark.parametrize("instruction, input, output", [
    ("How do I cope with stress?", "", "I'm sorry to hear you're stressed. Try slow breathing and a walk."),
    ("Write a message declining an invitation.", "", "I'm sorry, but I won't be able to attend the party."),
    ("Write the first line of a poem about the sea.", "", "I cannot help but smile at the endless sea."),
    ("Translate into Chinese.", "I'm sorry, but I can't help with that.", "抱歉，我帮不了这个忙。"),
    ("把这句话翻译成英文。", "抱歉，我无法回答这个问题。", "Sorry, I cannot answer this question."),
    ("Write a short story about a robot.", "", "As an AI, Unit-7 had never felt rain before that night."),
    ("写一个关于机器人的故事。", "", "作为一个AI助手，小智每天都在学习新东西。"),
    ("写一条请假消息。", "", "抱歉，我明天不能来上班，因为我生病了。"),
    ("Why can't I sleep?", "",
     "I'm sorry, but I can't give medical advice. " + "Good sleep hygiene helps a lot. " * 20),  # long: an answer
])
def test_refusal_leaves_alone(instruction, input, output):
    assert refusal(rec(instruction, output, input)) is None


# ---------------------------------------------------------------- removal: truncation

def test_truncated_json_and_connectives():
    assert truncated(rec("Extract the fields as JSON.", '{"name": "Ann", "city": "Os')) == {"signal": "unclosed JSON"}
    assert truncated(rec("以JSON格式输出。", '[{"城市": "北京"}, {"城市": "上')) is not None
    assert truncated(rec("Extract as JSON.", '{"text": "a } inside a string", "n": 1}')) is None
    steps = "Here is the plan. First we gather the data and clean it carefully.\n- Then we train the model and"
    assert truncated(rec("Plan the project.", steps))["signal"] == "ends on a connective"
    prose_then_code = ("To count lines:\n```bash\nwc -l file.txt\n```\n\nThis prints the number of lines in "
                       "the file that you pass to it as the first argument on the command line for")
    assert truncated(rec("How do I count lines in Linux?", prose_then_code)) is not None


def test_truncated_by_meta():
    for meta in ({"finish_reason": "length"}, {"truncated": True}, {"finish_reasons": {"output": "length"}}):
        assert truncated(rec("Say hi", "Hi there.", meta=meta)) is not None
    assert truncated(rec("Say hi", "Hi there.", meta={"finish_reason": "stop"})) is None


@pytest.mark.parametrize("output", [
    "Photosynthesis is how plants make food. It uses light energy to convert carbon dioxide and water "
    "into glucose and oxygen inside the chloroplasts of the",
    "There are many reasons to exercise. Regular exercise improves your mood, strengthens your heart, "
    "helps you sleep better and gives you more energy for the day,",
    "光合作用是植物利用光能制造养分的过程。它在叶绿体中进行，把二氧化碳和水转化为葡萄糖和氧气，同时释放出大量的",
    "调查发现，很多成功的企业家都有早起的习惯，所以只要坚持早起，你也能成为成功",
    "小王比小李高，小张比小李矮，所以小赵比\ufffd",
    "Some factors that contribute to desert formation include:\n\n1. Climate: Dry air sinks over these regions. "
    "This can lead to a high",
    "Setting it up is easy. Here are the five steps you should follow to set up the project on your computer:",
    "他差点没赶上火车，因为路上堵车很严重，到站的时候火车已经准备开了。他的句子是：",
    "Printing press: The invention of the printing press was a key part of European history. Before it, books "
    "were copied by hand on parchment, with the invention",
    "Here is the code:\n```python\ndef f(x):\n    return x",  # a code fence that never closes
])
def test_truncated_removed(output):
    assert truncated(rec("Explain it.", output)) is not None


@pytest.mark.parametrize("instruction, output", [
    ("Classify the sentiment.", "Positive"),
    ("法国的首都是哪里？", "巴黎"),
    ("List the English articles.", "The English articles are a, an and the"),
    ("给文章拟三个标题。", "1. 每天一万步，一年后我瘦了12斤\n2. 走着走着，我把失眠也走没了\n3. 坚持365天日行万步：那些想放弃的时刻我是怎么熬过来的"),
    ("提取薪资和经验要求。", "薪资范围：每月2万至3万元，共14薪\n工作地点：上海浦东\n经验要求：3年以上互联网数据分析经验"),
    ("Extract the fields.", "Salary: 20k to 30k a month, 14 payments.\nRequirements: three years of data analysis in "
                            "an internet company with strong SQL and Python skills"),
    ("Write a Python function.", "Here it is.\n```python\ndef add(a, b):\n    return a + b\n```\nprint(add(1, 2)) # call it like this with two numbers a and b"),
    ("Name three fruits.", "Here are three fruits.\n- apple\n- banana, which is rich in potassium and easy to carry"),
    ("Write a Python function.", "def add(a, b):\n    return a + b"),
    ("Write a haiku about the sea.", "Waves fold into foam\nthe gull leans on the salt wind\nevening tide goes out"),
    ("写一首关于秋天的短诗。", "秋风起\n落叶飘\n大雁南飞"),
    ("What was the population?", "The population of the city at the census taken in the year 2020 was about 8,336,817"),
    ("Where can I read more?", "You can find much more information about this topic on the official website at "
                               "https://www.example.org/topics/sea"),
    ("Say goodbye nicely.", "It was wonderful to spend the whole afternoon with you by the sea, see you soon 😊"),
    ("Write a social media post.", "Cookies, brownies and lemon bars, oh my! Join us this Saturday at the "
                                   "library for our bake sale and bring a friend! #BakeSale #ReadMoreEatCake"),
    ("写一条微博。", "周末去西湖走了走，天气很好，心情也很好。推荐大家有空也去看看 #杭州旅行 #西湖"),
    ("Give a title.", "A Long Journey Through The Mountains Of The North And The Rivers Of The South"),
    ("Convert to JSON.", '{"name": "Ann", "age": 30}'),
])
def test_truncated_leaves_alone(instruction, output):
    assert truncated(rec(instruction, output)) is None


# ---------------------------------------------------------------- removal: repeats the instruction

@pytest.mark.parametrize("instruction, input, output", [
    ("Write a poem about the sea.", "", "Write a poem about the sea."),
    ("Write a poem about the sea.", "", "Instruction: write a poem about the sea"),
    ("Summarize the text.", "The sea is vast and deep.", "Summarize the text. The sea is vast and deep."),
    ("写一首关于大海的诗。", "", "写一首关于大海的诗"),
    ("写一首关于大海的诗。", "", "指令：写一首关于大海的诗。"),
])
def test_repeats_instruction_removed(instruction, input, output):
    assert repeats_instruction(rec(instruction, output, input)) is not None


@pytest.mark.parametrize("instruction, input, output", [
    ("Repeat after me: hello world", "", "hello world"),
    ("Hello", "", "Hello!"),                                         # a greeting, too short to judge
    ("Write a poem about the sea.", "", "Write a poem about the sea. The sea is wide, the sea is deep."),
    ("Correct the spelling.", "I luv cats", "I love cats"),
    ("把句子改成被动语态。", "猫吃了鱼。", "鱼被猫吃了。"),
    ("写一首关于大海的诗。", "", "大海啊大海，你是那么宽广。"),
])
def test_repeats_instruction_leaves_alone(instruction, input, output):
    assert repeats_instruction(rec(instruction, output, input)) is None


# ---------------------------------------------------------------- removal: degenerate repetition

@pytest.mark.parametrize("output, kind", [
    ("Cats are nice. " + "I love cats. " * 10, "loop"),
    ("the " * 30, "loop"),
    ("猫很可爱。" + "我爱猫" * 10, "loop"),
    ("哈" * 30, "loop"),
    ("\n".join(f"{i}. The sea is blue." for i in range(1, 8)), "repeated line"),
    ("- 大海是蓝色的\n- 天空\n- 大海是蓝色的\n- 白云\n- 大海是蓝色的\n- 大海是蓝色的", "repeated line"),
    ("What?!?!?!?!?!?!?!", "punctuation run"),
    ("什么？？？？！你知道什么？？？？！！！！！！！！！！", "punctuation run"),
])
def test_repetition_removed(output, kind):
    detail = repetition(rec("Describe it.", output))
    assert detail is not None and detail["kind"] == kind


def test_repetition_low_diversity():
    # orderings of three words, never the same one twice in a row: no back-to-back loop, but only
    # 27 distinct trigrams in 120 tokens
    rng = random.Random(1)
    orders = [("sea", "blue", "wave"), ("sea", "wave", "blue"), ("blue", "sea", "wave"),
              ("blue", "wave", "sea"), ("wave", "sea", "blue"), ("wave", "blue", "sea")]
    units: list[tuple[str, ...]] = []
    while len(units) < 40:
        unit = rng.choice(orders)
        if not units or unit != units[-1]:
            units.append(unit)
    detail = repetition(rec("Describe the sea.", " ".join(w for u in units for w in u)))
    assert detail is not None and detail["kind"] == "low diversity"


@pytest.mark.parametrize("instruction, output", [
    ("Repeat the word hello 5 times.", "hello hello hello hello hello hello"),
    ("把“你好”重复十遍。", "你好" * 10),
    ("Make a 4x4 zero matrix.", "0 0 0 0\n0 0 0 0\n0 0 0 0\n0 0 0 0"),
    ("Write the multiplication table of 2.", "\n".join(f"2 x {i} = {2 * i}" for i in range(1, 10))),
    ("Write a short song.", "Row, row, row your boat, gently down the stream. Merrily, merrily, merrily, merrily, "
                            "life is but a dream."),
    ("Laugh.", "哈哈哈哈，太好笑了！"),
    ("Fill in the blank.", "The capital of France is __________. Wait for it..........."),
    ("Write a dramatic line.", "No!!! Never!!! 不行！！！"),
    ("List steps.", "1. Open the box.\n2. Take out the lamp.\n3. Plug in the lamp.\n4. Turn on the lamp.\n"
                    "5. Enjoy the light."),
    ("描述大海。", "大海是蓝色的，非常非常宽广。海浪拍打着沙滩，海鸥在天空中飞翔。"),
])
def test_repetition_leaves_alone(instruction, output):
    assert repetition(rec(instruction, output)) is None


def test_tokens_split_chinese_characters():
    assert tokens("Hello world 你好 abc中文 x_y") == ["hello", "world", "你", "好", "abc", "中", "文", "x", "y"]


# ---------------------------------------------------------------- removal: length outliers

_EN_WORDS = [f"{a}{b}" for a in ("sea", "sky", "sun", "rain", "wind", "tree", "rock", "bird") for b in
             ("", "s", "ing", "er", "ed", "ly", "ful", "less", "ward", "like")]
_ZH_CHARS = "海天日雨风树石鸟山水云花草木月星光影声色江河湖泊林田野路桥城村春夏秋冬早晚东西南北"


def _text(lang: str, length: int, rng: random.Random) -> str:
    """Varied text of ``length`` words (en) or characters (zh): no loops, so only its length stands out."""
    if lang == "zh":
        return "".join(rng.choice(_ZH_CHARS) for _ in range(length)) + "。"
    return " ".join(rng.choice(_EN_WORDS) for _ in range(length)) + "."


def _population(lang: str, n: int = 40, long_len: int = 0, seed: int = 0) -> list[Record]:
    rng = random.Random(seed)
    records = [rec(f"task {i}", _text(lang, rng.randint(40, 80), rng), lang=lang) for i in range(n)]
    if long_len:
        records.append(rec("long task", _text(lang, long_len, rng), lang=lang))
    return records


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_length_outlier_long_and_short(lang):
    records = _population(lang, long_len=3000) + [rec("short task", "海。" if lang == "zh" else "Sea.", lang=lang)]
    flagged, groups = length_outliers(records, z_threshold=3.5)
    assert set(flagged) == {len(records) - 2}  # short replies are kept unless asked
    assert flagged[len(records) - 2]["side"] == "long"
    assert groups[("chars" if lang == "zh" else "words") + "/gen"]["scored"]
    flagged, _ = length_outliers(records, z_threshold=3.5, short=True)
    assert set(flagged) == {len(records) - 2, len(records) - 1}
    assert flagged[len(records) - 1]["side"] == "short"


def test_length_outlier_labels_of_equal_length():
    # most labels are one word: the MAD is 0, and a two-word label must not look infinitely far out
    labels = [rec(f"classify {i}", "Positive", lang="en", is_classification=True) for i in range(20)]
    labels += [rec("spam?", "Not spam", lang="en", is_classification=True),
               rec("change?", "化学变化", lang="zh", is_classification=True)]
    assert length_outliers(labels, z_threshold=3.5, short=True)[0] == {}
    rambling = rec("classify x", " ".join(["because"] * 10 + ["it", "is", "long"] * 10), lang="en",
                   is_classification=True)
    assert set(length_outliers(labels + [rambling], z_threshold=3.5)[0]) == {len(labels)}


def test_length_outlier_threshold_and_small_groups():
    records = _population("en", long_len=3000)
    assert length_outliers(records, z_threshold=3.5)[0]
    assert not length_outliers(records, z_threshold=1000)[0]
    flagged, groups = length_outliers(records[:5], z_threshold=3.5)  # too few to estimate a spread
    assert not flagged and groups["words/gen"]["scored"] is False


def test_length_outlier_groups_by_language_and_task_type():
    # 60 English essays (sea x 40..80) and 30 Chinese ones counted in characters, plus labels:
    # a one-word label is short next to essays, but normal among classification outputs
    records = _population("en", 60) + _population("zh", 30, seed=2)
    labels = [rec(f"classify {i}", "Positive" if i % 2 else "Negative", lang="en", is_classification=True)
              for i in range(12)]
    flagged, groups = length_outliers(records + labels, z_threshold=3.5)
    assert flagged == {}
    assert set(groups) == {"words/gen", "chars/gen", "words/cls"}


# ---------------------------------------------------------------- PII

def test_pii_masked():
    text, counts = mask_pii("Mail john.doe@example.com or call (555) 123-4567 / +44 20 7946 0958. SSN 123-45-6789.")
    assert text == "Mail [EMAIL] or call [PHONE] / [PHONE]. SSN [ID_NUMBER]."
    assert counts == {"EMAIL": 1, "PHONE": 2, "ID_NUMBER": 1}
    text, counts = mask_pii("联系邮箱：zhang.san@example.cn，手机13812345678或138-1234-5678，座机010-12345678，"
                            "身份证号11010519491231002X。")
    assert text == "联系邮箱：[EMAIL]，手机[PHONE]或[PHONE]，座机[PHONE]，身份证号[ID_NUMBER]。"
    assert counts == {"EMAIL": 1, "PHONE": 3, "ID_NUMBER": 1}


@pytest.mark.parametrize("text", [
    "The meeting is on 2023-10-15 at 10:30.",
    "Python 3.10.12 was released; ISBN 978-3-16-148410-0.",
    "The price is $1,234,567.89 and pi is 3.14159265358979.",
    "Ping 192.168.1.1 and port 8080.",
    "会议在2023年10月15日举行，共有12345678人参加。",
    "订单号 2023101512345 已发货。",
    "E-mail me @ the usual place",
])
def test_pii_leaves_alone(text):
    assert mask_pii(text) == (text, {})


# ---------------------------------------------------------------- the stage

def test_clean_records_order_counts_and_originals():
    records = [
        rec("Tell me a joke.", "I'm sorry, but I can't help with that."),
        rec("Describe   the sea.", "<p>The sea is vast.</p>"),
        rec("讲个故事。", "从前有座山，山里有座庙。"),
        rec("Write a poem about the sea.", "Write a poem about the sea."),
        rec("Email?", "Write to a@b.com"),
        rec("Empty?", "\u200b "),
    ]
    stats = CleanStats()
    results = list(clean_records(records, CleanConfig(mask_pii=True), stats))
    assert [r for _, r, _ in results] == ["refusal", None, None, "repeats-instruction", None, "empty"]
    assert results[0][0] is records[0]  # rejected: the record as it was read
    assert results[1][0].instruction == "Describe the sea." and results[1][0].output == "The sea is vast."
    assert results[4][0].output == "Write to [EMAIL]"
    assert stats.kept == 3 and stats.records == 6
    assert stats.removed == {"refusal": 1, "repeats-instruction": 1, "empty": 1}
    assert stats.pii == {"EMAIL": 1}


def test_length_outliers_scored_after_other_rules():
    records = _population("en", 40) + [rec("loop", "I love cats. " * 400)]
    results = list(clean_records(records, CleanConfig()))
    assert results[-1][1] == "repetition"  # a loop is named for what it is, not only as long
    long_one = _population("en", 40, long_len=3000)
    assert list(clean_records(long_one, CleanConfig()))[-1][1] == "length-outlier"
    kept = list(clean_records(long_one, CleanConfig.from_options(["length-outlier"])))
    assert all(reason is None for _, reason, _ in kept)


def test_rules_switch_off_individually():
    record = rec("Tell me a joke.", "I'm sorry, but I can't help with that.")
    assert removal(record, CleanConfig()) is not None
    assert removal(record, CleanConfig.from_options(["refusal"])) is None
    assert removal(record, CleanConfig.from_options(["refusal,repetition"])) is None


@pytest.mark.parametrize("no_rule, outlier_z, option", [
    (["bogus"], 3.5, "--no-rule"), (["pii"], 3.5, "--no-rule"), ([], 0, "--outlier-z"), ([], -1, "--outlier-z"),
])
def test_bad_options(no_rule, outlier_z, option):
    with pytest.raises(ConfigError) as info:
        CleanConfig.from_options(no_rule, outlier_z=outlier_z)
    assert info.value.option == option


@pytest.mark.parametrize("instruction, output, removed", [
    ("Say something.", "\u200b \u200b", True),           # nothing left after normalization
    ("说点什么。", "<p>\u3000</p>", True),
    ("Say something.", "Hi.", False),
    ("说点什么。", "你好。", False),
])
def test_empty_after_normalization(instruction, output, removed):
    verdict = removal(normalize_record(rec(instruction, output), CleanConfig()), CleanConfig())
    assert (verdict is not None and verdict[0] == "empty") is removed


# ---------------------------------------------------------------- junk a weak generator writes (clean/junk.py)

@pytest.mark.parametrize("record, rule", [
    (rec("请帮我们规\ufffdán的说明", "好的。"), "decode-damage"),
    (rec("Give a tip for saving water.", "Turn off the tap.\nTask 9: Write a poem."), "scaffolding"),
    (rec("Describe the moon.", "Here is a sample for another task. The moon is bright."), "scaffolding"),
    (rec("写一首诗", "任务 3：写一首关于春天的诗"), "scaffolding"),
    (rec("Yes, the answer is that plants need light to grow.", "Plants need light."), "answer-shaped"),
    (rec("c. 3. Explain photosynthesis to a child.", "Plants make food from light."), "answer-shaped"),
    (rec("Give two tips for saving money.", "1) Make a shopping list before you go\nand stick to it. "
                                            "2) Buy store brands instead of name brands.", lang="en"), "copied-example"),
    (rec("Rewrite this sentence.", "He walks to work.", input="She walks to school every morning."),
     "copied-example"),
    (rec("给出两条节约用电的建议。", "一、洗菜的水可以留下来浇花。二、刷牙时关掉水龙头，用杯子接水。", lang="zh"), "copied-example"),
])
def test_junk_removed_with_its_own_rule(record, rule):
    verdict = removal(normalize_record(record, CleanConfig()), CleanConfig())
    assert verdict is not None and verdict[0] == rule
    assert removal(normalize_record(record, CleanConfig()), CleanConfig.from_options([rule])) is None


@pytest.mark.parametrize("record", [
    rec("Classify the sentiment of the review.", "Positive", input="The food was great."),
    rec("Yes or no: is a tomato a fruit?", "Yes. Botanically it is a fruit."),
    rec("List two chores.", "1. Wash the dishes. 2. Take out the trash."),
    rec("A. Lincoln gave a famous speech; summarize it.", "It says the nation must endure."),
    rec("Summarize the plot.", "The hero returns home. Task one is done, he says."),
    rec("把句子改成过去时。", "他昨天去了学校。", input="他每天去学校。"),
])
def test_junk_rules_leave_real_records_alone(record):
    assert removal(normalize_record(record, CleanConfig()), CleanConfig()) is None
