"""Low-level text recognizers shared by the reply parsers: markers, labels, fences, chatter.

Everything here works line by line on text that :func:`clean_text` has normalized. The patterns
describe how models number and label things in practice, in English and Chinese, with ASCII or
full-width punctuation and markdown decoration (``**bold**``, ``### headings``, ``- bullets``).
"""

from __future__ import annotations

import json
import re
from typing import Any

BOLD = r"(?:\*\*|__)"
ZH_NUM = "一二三四五六七八九十"
COLON = r"[:：]"

# "1."  "1)"  "1、"  "(1)"  "（1）"  "[1]"  "**1.**"  "### 1."  "一、" ; "1.5 kg" is not a marker
NUM_MARKER = re.compile(
    rf"^[ \t]*(?:#{{1,6}}[ \t]*)?(?P<bold>\*\*|__)?[ \t]*"
    rf"(?:[(（\[][ \t]*\d{{1,3}}[ \t]*[)）\]]"
    rf"|\d{{1,3}}[ \t]*(?:\.(?!\d)|．|[)）、]|:(?!\d)|：)"
    rf"|[{ZH_NUM}]{{1,3}}[ \t]*[、．.])"
    rf"[ \t]*(?(bold){BOLD}?)[ \t]*")  # a closing ** only when one opened before the number

BULLET = re.compile(r"^[ \t]*[-*•·+][ \t]+(?=\S)")
SEPARATOR = re.compile(r"^[ \t]*(?:#{3,}|-{3,}|\*{3,}|={3,}|_{3,})[ \t]*$")
FENCE = re.compile(r"^[ \t]*(?:```|~~~)")

_NAMED_WORDS = {
    # names that may precede a number to open a block: "Task 1:", "Example 2", "任务3：", "第4题"
    "list": r"task|example|instance|sample|item|instruction|question|prompt|"
            r"任务|示例|例子|样例|范例|例|指令|题目|问题|条目",
    "tasks": r"task|example|item|instruction|任务|示例|例子|样例|范例|指令|条目",
    "instances": r"example|instance|sample|示例|例子|样例|范例|例|实例",
}


def named_marker(kind: str) -> re.Pattern[str]:
    """Markers like ``Task 1:`` / ``**Example 2**`` / ``任务3：`` / ``第4个``; a bare ``Example:`` line too.

    ``第`` needs its counter (``第4题``, ``第一个任务``): "第一次世界大战..." is text, not a marker.
    """
    words = _NAMED_WORDS[kind]
    digits = rf"(?:\d{{1,3}}(?![\d.,])|[{ZH_NUM}]{{1,3}})"
    number = (rf"(?:(?:{words})[ \t]*[#＃№]?[ \t]*{digits}[ \t]*(?:个|题|条|项)?(?:任务|示例|例子)?"
              rf"|第[ \t]*{digits}[ \t]*(?:个|题|条|项|道题)(?:任务|示例|例子)?)")
    return re.compile(
        rf"^[ \t]*(?:#{{1,6}}[ \t]*)?(?P<bold>\*\*|__)?[ \t]*"
        rf"(?:{number}[ \t]*(?(bold){BOLD}?)[ \t]*(?:[.:：)）、\-—–][ \t]*)?"
        rf"|(?:{words})[ \t]*(?(bold){BOLD}?)[ \t]*{COLON}?[ \t]*(?(bold){BOLD}?)[ \t]*$)"
        rf"(?(bold){BOLD}?)[ \t]*", re.I)


def label_pattern(aliases: dict[str, str]) -> re.Pattern[str]:
    """``Input:`` ``**Input:**`` ``**Input**:`` ``### Input:`` ``- Input：`` ``【输入】`` ``Input 2:``."""
    names = sorted(aliases, key=len, reverse=True)
    alt = "|".join(re.escape(n).replace(r"\ ", r"[ \t]+") for n in names)
    return re.compile(
        rf"^[ \t]*(?:[-*•][ \t]+)?(?:#{{1,6}}[ \t]*)?(?P<bold>\*\*|__)?[ \t]*"
        rf"(?:【[ \t]*(?P<a>{alt})[ \t]*\d{{0,3}}[ \t]*】[ \t]*{COLON}?"
        rf"|\[[ \t]*(?P<b>{alt})[ \t]*\][ \t]*{COLON}?"
        rf"|(?P<c>{alt})[ \t]*#?\d{{0,3}}[ \t]*(?:[(（][^)）\n]{{0,30}}[)）])?[ \t]*(?(bold){BOLD}?)[ \t]*{COLON})"
        rf"[ \t]*(?(bold){BOLD}?)[ \t]*", re.I)  # a closing ** only when one opened before the label


def match_label(line: str, pattern: re.Pattern[str], aliases: dict[str, str]) -> tuple[str, str] | None:
    """(canonical field, value on the same line) when ``line`` starts with a label."""
    m = pattern.match(line)
    if not m:
        return None
    name = next(g for g in (m.group("a"), m.group("b"), m.group("c")) if g)
    key = re.sub(r"\s+", " ", name.lower())
    return aliases.get(key, aliases.get(name, "")), line[m.end():]


# ------------------------------------------------------------------ chatter

# A paragraph a model adds before or after the list: "Sure! Here are ...", "I hope these help."
_PREAMBLE = re.compile(
    r"^[ \t>*_#]*(?:sure|certainly|of course|absolutely|okay|ok\b|great|here\b|here's|here are|below|"
    r"i'd be happy|i would be happy|i'm happy|happy to|as requested|the following|following are|"
    r"these are|new tasks|more tasks|好的|好|当然|以下|下面|这里|没问题|为您|为你|根据您的|根据你的|我来|"
    r"这是|这些是|新的任务|更多)", re.I)
_CLOSING = re.compile(
    r"^[ \t>*_#]*(?:i hope|hope (?:this|these|that)|let me know|feel free|these (?:tasks|examples|instructions)|"
    r"those (?:are|were)|this list|note:|please note|if you (?:need|want|have|would)|i've|i have (?:generated|created|provided)|"
    r"enjoy|happy |good luck|all of these|each of these|these should|i can (?:also|generate|provide)|"
    r"would you like|do you want|希望|如果您|如果你|如需|如有|以上|注意|请注意|祝|这些任务|这些示例|这些例子|"
    r"需要更多|还需要)", re.I)


def is_preamble(line: str) -> bool:
    text = line.strip()
    return bool(text) and (bool(_PREAMBLE.match(text)) or text.endswith((":", "：")))


def is_closing(paragraph: str) -> bool:
    return bool(_CLOSING.match(paragraph.strip()))


def strip_closing(text: str) -> str:
    """Drop closing chatter paragraphs (or lines) at the end of the last field of a reply."""
    paragraphs = re.split(r"\n[ \t]*\n", text.strip())
    while len(paragraphs) > 1 and is_closing(paragraphs[-1]):
        paragraphs.pop()
    text = "\n\n".join(paragraphs).strip()
    lines = text.split("\n")
    while len(lines) > 1 and is_closing(lines[-1]) and _strong_closing(lines[-1]):
        lines.pop()
    return "\n".join(lines).strip()


def _strong_closing(line: str) -> bool:
    return bool(re.match(r"^[ \t>*_]*(?:i hope|hope this|let me know|feel free|希望|如果您|如需|如有)", line, re.I))


# ------------------------------------------------------------------ normalization

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_NOINPUT = {
    "", "<noinput>", "<no input>", "noinput", "no input", "no input.", "no input required", "(no input)",
    "[no input]", "<none>", "none", "none.", "(none)", "null", "nil", "n/a", "n/a.", "na", "-", "--", "—",
    "not applicable", "not needed", "empty", "(empty)", "<empty>", "no additional input",
    "无输入", "<无输入>", "（无输入）", "(无输入)", "无", "无。", "（无）", "(无)", "<无>", "空", "没有", "无需输入",
    "不需要输入", "无需额外输入", "不需要", "暂无", "无额外输入",
}


def clean_text(text: str) -> str:
    """Unify newlines and spaces; drop zero-width characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    return text.replace("\u00a0", " ").replace("\u3000", " ").replace("\t", "    ")


def normalize_input(value: str) -> str:
    """``<noinput>``, ``N/A``, ``None``, ``无输入``... mean no input: return ""."""
    text = strip_wrapping(value)
    probe = re.sub(r"\s+", " ", text).strip().strip("\"'“”「」`").strip().lower()
    return "" if probe in _NOINPUT or probe.rstrip(".。") in _NOINPUT else text


def strip_wrapping(value: str) -> str:
    """Trim whitespace and markdown bold wrapped around a whole value (``**Positive**`` -> ``Positive``)."""
    text = value.strip()
    for mark in ("**", "__"):
        while len(text) > 2 * len(mark) and text.startswith(mark) and text.endswith(mark) \
                and mark not in text[len(mark):-len(mark)]:
            text = text[len(mark):-len(mark)].strip()
    if text in ("**", "__"):
        return ""
    return text


def unfence(text: str) -> str:
    """Unwrap a reply (or its structured part) that a model put inside one markdown code fence.

    Fences inside a field (code in an output) are kept: we unwrap only when the text outside the
    outermost fence pair holds no structure, or when the reply opens with a fence that never closes.
    """
    lines = text.split("\n")
    fences = [i for i, line in enumerate(lines) if FENCE.match(line)]
    if not fences:
        return text
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    first, last = fences[0], fences[-1]
    if len(fences) >= 2:
        outside = lines[:first] + lines[last + 1:]
        if all(not line.strip() or is_preamble(line) or is_closing(line) for line in outside):
            return "\n".join(lines[first + 1:last])
    if len(fences) == 1 and first == nonblank[0]:
        return "\n".join(lines[first + 1:])
    return text


def json_items(text: str) -> list[Any] | None:
    """The list a JSON reply holds (``[...]``, ``{"tasks": [...]}`` or one object), else None."""
    body = text.strip()
    if not body or body[0] not in "[{":
        return None
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: a reply nested thousands of levels deep
        return None
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        value = lists[0] if len(lists) == 1 and len(value) == 1 else [value]
    return value if isinstance(value, list) else None


def json_field(obj: Any, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` in a JSON object, as text (numbers and booleans too)."""
    if not isinstance(obj, dict):
        return None
    lowered = {str(k).lower().replace(" ", "_"): v for k, v in obj.items()}
    for name in names:
        value = lowered.get(name)
        if isinstance(value, str):
            return value
        if isinstance(value, (bool, int, float)):
            return json.dumps(value)
    return None
