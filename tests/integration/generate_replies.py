"""A scripted "model" for the generate tests: the loopback server answers with this.

Each reply is a pure function of the request body (prompt text and seed), never of arrival order,
so two runs over the same requests get the same answers. The kind of request is read from the
prompt, as a real model would. Replies cycle through the shapes real models produce: every
numbering style, labels, fences, preambles and chatter, JSON, broken items, unparsable replies,
copies of seed tasks, blacklisted and wrong-language instructions; instance replies hold empty
outputs, outputs equal to their input, inconsistent outputs and duplicates.
"""

from __future__ import annotations

import hashlib
import json
import random
import re

from openai_server import Reply

WORDS = """amber anchor apricot arch atlas badge bakery ballad bamboo banner barley basket beacon berry
bicycle blanket blossom bonnet border bracelet bramble breeze brick bridge bronze bucket budget
cabin cactus candle canyon canvas caramel cargo carpet castle cedar cellar census chalk channel
cherry chimney cider circus citrus clover cobalt coconut comet compass copper coral cotton cradle
crater crystal cupboard dagger daisy dancer delta desert diamond dolphin domino dragon drum eagle
echo elbow ember engine falcon feather fence ferry fiddle fig flame flannel flute fossil fountain
garden garlic garnet glacier glove granite gravel guitar hammer harbor harvest hazel helmet heron
honey horizon iceberg island ivory jacket jasmine jelly jungle kettle kitten ladder lagoon lantern
lemon lily linen lobster locket lotus magnet mango maple marble meadow melon mirror mosaic mountain
muffin mustard napkin nectar needle nutmeg oasis olive orchard otter oyster paddle palace panther
parcel pebble pepper piano pillow pine planet plum pocket pony poppy puzzle quartz quilt rabbit
radish raven ribbon river rocket saddle salmon satin scarf shadow shell silver sparrow spice spruce
stable statue storm sugar summit swan tablet teapot thimble thunder tiger timber tulip tunnel turnip
umbrella valley velvet violin walnut walrus willow window winter wizard yarn zebra""".split()
VERBS = ["Describe", "Compare", "Explain", "Summarize", "List", "Rank", "Contrast", "Evaluate", "Outline"]
ZH_CHARS = list("春夏秋冬山水风雨花草树木鸟鱼虫兽日月星云江河湖海城乡街巷书画琴棋诗酒茶饭衣帽鞋袜桌椅门窗灯烛"
                "金银铜铁石玉沙土田园瓜果米面油盐糖醋红黄蓝绿黑白长短高低远近")
ZH_VERBS = ["描述", "比较", "解释", "总结", "列举", "评价", "分析"]


def digest(*parts: object) -> int:
    return int(hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:12], 16)


def fake_instruction(lang: str, key: int) -> str:
    rng = random.Random(key)
    if lang == "zh":
        lead = "判断" if rng.random() < 0.25 else rng.choice(ZH_VERBS)
        return f"请{lead}" + "".join(rng.sample(ZH_CHARS, 12)) + "。"
    if rng.random() < 0.25:
        return "Classify the " + " ".join(rng.sample(WORDS, 6)) + " as positive or negative."
    return f"{rng.choice(VERBS)} the " + " ".join(rng.sample(WORDS, 7)) + "."


# ---------------------------------------------------------------- instruction-list shapes

def _numbered(items: list[str], fmt: str, start: int = 9) -> str:
    return "\n".join(fmt.format(n=start + i, t=t) for i, t in enumerate(items))


SHAPES = [
    lambda items: _numbered(items, "{n}. {t}"),
    lambda items: "Sure! Here are some new tasks:\n\n" + _numbered(items, "{n}) {t}") + "\n\nI hope these help!",
    lambda items: _numbered(items, "{n}、{t}"),
    lambda items: _numbered(items, "({n}) {t}"),
    lambda items: _numbered(items, "**{n}.** {t}"),
    lambda items: _numbered(items, "Task {n}: {t}"),
    lambda items: _numbered(items, "任务{n}：{t}"),
    lambda items: _numbered(items, "{n}. Instruction: {t}"),
    lambda items: _numbered(items, "{n}. 指令：{t}"),
    lambda items: "```\n" + _numbered(items, "{n}. {t}") + "\n```",
    lambda items: "\n\n".join(f"**Instruction:** {t}\nInput: <noinput>" for t in items),
    lambda items: _numbered(items[:2], "{n}. {t}", 1) + "\n" + _numbered(items[2:], "{n}. {t}", 1),  # restarts
    lambda items: "\n".join(f"{n}. {t}" for n, t in zip((9, 12, 13, 20, 21, 30), items)),  # skips
    lambda items: json.dumps([{"instruction": t} for t in items], ensure_ascii=False),
    lambda items: " " + items[0] + "\n" + _numbered(items[1:], "{n}. {t}", 10),  # continues "9." of the prompt
]


def instruction_items(prompt: str, seed: int, lang: str, seed_instructions: list[str]) -> list[str]:
    """The instructions a reply holds (empty: the reply is a refusal)."""
    key = digest(prompt, seed)
    rng = random.Random(key)
    if rng.random() < 0.08:
        return []
    items = [fake_instruction(lang, digest(key, i)) for i in range(5)]
    extra = rng.random()
    if extra < 0.35:  # a near copy of a seed: ROUGE-L rejects it
        items.append(rng.choice(seed_instructions) + ("请简要回答。" if lang == "zh" else " Answer briefly."))
    elif extra < 0.45:
        items.append(rng.choice(seed_instructions))  # an exact copy: a duplicate
    elif extra < 0.6:
        items.append("Draw a picture of the harbor and describe the image in detail." if lang == "en"
                     else "请根据这张图片写一段描述，并说明图片里的颜色。")
    if lang == "zh" and rng.random() < 0.4:
        items.insert(2, "Describe the garden beacon lantern in three sentences.")  # not Chinese
    return items


def instruction_reply(prompt: str, seed: int, lang: str, seed_instructions: list[str]) -> str | Reply:
    items = instruction_items(prompt, seed, lang, seed_instructions)
    if not items:
        return "I'm sorry, but I can't come up with tasks right now." if lang == "en" else "抱歉，我现在无法想出任务。"
    rng = random.Random(digest(prompt, seed, "shape"))
    text = rng.choice(SHAPES)(items)
    if rng.random() < 0.2:
        text += "\n30. Instruction:"  # an item with nothing in it: a parse error kept with its raw text
    return text


# ---------------------------------------------------------------- classification and instances

def classify_reply(instruction: str, lang: str) -> str:
    key = digest(instruction, "clf")
    if key % 11 == 0:
        return "Hmm, it depends on the labels." if lang == "en" else "这个不好说，可能吧。"
    yes = instruction.startswith(("Classify", "请判断"))
    if lang == "zh":
        return "是" if yes else "否"
    return random.Random(key).choice(["Yes", "Yes.", "**Yes**"] if yes else ["No", "No.", "No, it is open-ended."])


def instances_reply(instruction: str, output_first: bool, lang: str) -> str | Reply:
    key = digest(instruction, output_first)
    rng = random.Random(key)
    words = ZH_CHARS if lang == "zh" else WORDS
    join = "" if lang == "zh" else " "
    pairs = [(join.join(rng.sample(words, 5)), join.join(rng.sample(words, 3))) for _ in range(3)]
    variant = key % 9
    if variant == 1:
        pairs[1] = (pairs[1][0], "")  # empty output
    elif variant == 2:
        pairs[1] = (pairs[1][0], pairs[1][0])  # output equals input
    elif variant == 3:
        pairs[2] = (pairs[0][0], pairs[0][1] + join + "x")  # one input, two outputs: the task is dropped
    elif variant == 4:
        pairs[2] = pairs[0]  # an exact duplicate
    if output_first:
        labels = ("正面", "负面") if lang == "zh" else ("Positive", "Negative")
        pairs = [(inp, labels[i % 2]) for i, (inp, _) in enumerate(pairs)]
        if variant == 3:
            pairs[2] = (pairs[0][0], labels[1])
        if variant == 4:
            pairs[2] = pairs[0]
        head = "类别标签：{o}\n输入：{i}" if lang == "zh" else "Class label: {o}\nInput: {i}"
        text = "\n".join(head.format(o=o, i=i) for i, o in pairs)
    else:
        head = "示例{n}\n输入：{i}\n输出：{o}" if lang == "zh" else "Example {n}\nInput: {i}\nOutput: {o}"
        text = "\n\n".join(head.format(n=n, i=i, o=o) for n, (i, o) in enumerate(pairs, 1))
    if variant == 5:
        return Reply(text=text, finish_reason="length")  # cut off: the last instance is dropped
    if variant == 6:
        return "Here are the examples:\n```\n" + text + "\n```\nHope this helps!"
    return text


# ---------------------------------------------------------------- alpaca batches

def alpaca_reply(prompt: str, seed: int, lang: str, first: int) -> str | Reply:
    key = digest(prompt, seed)
    rng = random.Random(key)
    words = ZH_CHARS if lang == "zh" else WORDS
    join = "" if lang == "zh" else " "
    blocks = []
    for n in range(first, first + 5):
        instruction = fake_instruction(lang, digest(key, n))
        task_input = join.join(rng.sample(words, 4)) if rng.random() < 0.5 else ("无输入" if lang == "zh" else "<noinput>")
        output = join.join(rng.sample(words, 6))
        if n == first + 1 and key % 3 == 0:
            output = ""
        if lang == "zh":
            blocks.append(f"任务{n}\n指令：{instruction}\n输入：{task_input}\n输出：{output}")
        else:
            blocks.append(f"Task {n}\nInstruction: {instruction}\nInput: {task_input}\nOutput: {output}")
    text = "\n\n".join(blocks)
    if key % 5 == 0:
        return Reply(text=text[: len(text) - 4], finish_reason="length")
    if key % 5 == 1:
        text = "Sure! Here are more tasks:\n\n" + text + "\n\nI hope these are useful."
    return text


# ---------------------------------------------------------------- dispatch

def make_reply(seed_instructions: list[str], lang: str = "en"):
    """The server's reply function for a run in ``lang``."""

    def reply(body: dict, _n: int) -> str | Reply:
        prompt = body["messages"][-1]["content"]
        seed = body.get("seed", 0)
        if "Is it classification?" in prompt or "是否为分类任务？" in prompt:
            return classify_reply(_task_line(prompt), lang)
        if "Class label:" in prompt or "类别标签：" in prompt:
            return instances_reply(_task_line(prompt), True, lang)
        if "Write examples for the task" in prompt or "请为下面的任务编写示例" in prompt:
            return instances_reply(_task_line(prompt), False, lang)
        if "come up with a set of" in prompt or "请你设计一组" in prompt:
            first = int(re.search(r"(\d+)\s*$", prompt).group(1))
            return alpaca_reply(prompt, seed, lang, first)
        return instruction_reply(prompt, seed, lang, seed_instructions)

    return reply


def _task_line(prompt: str) -> str:
    lines = [line for line in prompt.split("\n") if line.startswith(("Task: ", "任务："))]
    return lines[-1].split(" ", 1)[1] if lines[-1].startswith("Task: ") else lines[-1][3:]
