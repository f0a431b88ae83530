"""Rule-based operations, no LLM: ``rule:template`` and ``rule:keywords``.

``rule:template`` recasts an instruction through the templates of ``sftdata/data/templates_<lang>.txt``:
a command becomes a request or a question ("Write a haiku." -> "Could you write a haiku?",
"写一首短诗。" -> "你能写一首短诗吗？"), a question gets a frame ("Here is my question: ..."), and any
instruction can be introduced ("Task: ..."). The meaning does not change, so the parent's output
stays valid.

``rule:keywords`` adds a domain keyword or a constraint from a user's list. A list entry that ends
like a sentence ("Answer in under 100 words.", "回答不超过一百字。") is a constraint, appended as it
is; any other entry is a keyword, put in through ``keyword_templates_<lang>.txt``. The instruction
then asks for more than before, so its answer comes from the LLM, not from the parent.

Each function takes the caller's ``random.Random`` so the choice is reproducible; it returns
``(new_instruction, detail)`` or None when the operation does not apply.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from ..filter.tokenize import has_cjk
from .prompting import data_lines, data_sections

SUPPORTED_LANGS = ("en", "zh")
_EN_PREFIXES = re.compile(
    r"^(?:please|kindly|can you|could you|would you|will you|would you mind|i want you to|i'd like you to|"
    r"i would like you to|i need you to|help me|your task is to|go ahead and|is it possible for you to)\b[,\s]*",
    re.I)
_ZH_PREFIXES = ("能否请你", "可以帮我", "我想请你", "希望你能", "你的任务是：", "你的任务是", "请你试着", "你能不能",
                "你能否", "你可以", "麻烦你", "麻烦您", "请你", "请您", "你能", "能否", "帮我", "请")
_ZH_REQUEST = ("你能", "你能否", "你能不能", "你可以", "能否", "能否请你", "可以帮我")
_SENTENCE_END = re.compile(r"[.!?。！？]\s*$")


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).lower()


def split_form(instruction: str, lang: str) -> tuple[str, str]:
    """(form, core): form is "imperative", "question" or "other"; core as the templates expect it."""
    if lang == "zh":
        return _split_zh(instruction.strip())
    return _split_en(instruction.strip())


def _split_en(text: str) -> tuple[str, str]:
    if len(re.split(r"(?<=[.!?])\s+(?=\S)", text)) > 1 or "\n" in text:
        return "other", text
    core, request = text, False
    while True:
        stripped = _EN_PREFIXES.sub("", core, count=1)
        if stripped == core:
            break
        core, request = stripped, True
    question = core.rstrip().endswith("?") and not request
    core = core.rstrip(" .!?")
    first = core.split(" ", 1)[0].lower().strip(",;:") if core else ""
    verbs = set(" ".join(data_sections("templates_en.txt").get("verbs", ())).split())
    if first in verbs and not question:
        return "imperative", core[0].lower() + core[1:]
    if question:
        return "question", core
    return "other", text


def _split_zh(text: str) -> tuple[str, str]:
    body = text.rstrip(" 。！？!?.")
    if re.search(r"[。！？!?；;]", body) or "\n" in body:
        return "other", text
    core, request = body, False
    while True:
        if core.startswith("请问"):  # "请问……" asks a question; its 请 is not a request prefix
            break
        prefix = next((p for p in _ZH_PREFIXES if core.startswith(p) and len(core) > len(p)), None)
        if prefix is None:
            break
        core, request = core[len(prefix):].lstrip("，, "), request or prefix in _ZH_REQUEST
    ends_question = bool(re.search(r"[？?]\s*$", text)) or core.endswith(("吗", "呢"))
    if request and core.endswith("吗"):
        core, ends_question = core[:-1], False
    verbs = " ".join(data_sections("templates_zh.txt").get("verbs", ())).split()
    if ends_question and not request:
        return "question", core
    if any(core.startswith(v) for v in verbs):
        return "imperative", core
    return "other", text


def template_variant(instruction: str, lang: str, rng: random.Random) -> tuple[str, dict] | None:
    """The instruction recast through one template chosen by ``rng``; None when none changes it."""
    if lang not in SUPPORTED_LANGS:
        return None
    sections = data_sections(f"templates_{lang}.txt")
    form, core = split_form(instruction, lang)
    pool = [(form, t) for t in sections.get(form, ())] if form != "other" else []
    pool += [("any", t) for t in sections.get("any", ())]
    original = _norm(instruction)
    choices = []
    for kind, template in pool:
        prefix = template.split("{", 1)[0].strip()
        if kind == "any" and prefix and instruction.lower().startswith(prefix.lower()):
            continue  # "Task: Task: ..."
        text = template.replace("{core}", core).replace("{instruction}", instruction.strip())
        if _norm(text) != original:
            choices.append((kind, template, text))
    if not choices:
        return None
    kind, template, text = rng.choice(choices)
    return text, {"form": form, "template": template}


def is_constraint(entry: str) -> bool:
    return bool(_SENTENCE_END.search(entry))


def keyword_variant(instruction: str, lang: str, keywords: Sequence[str],
                    rng: random.Random) -> tuple[str, dict] | None:
    """The instruction with one keyword or constraint from ``keywords`` added; None when none fits."""
    if lang not in SUPPORTED_LANGS or not keywords:
        return None
    lowered = instruction.lower()
    unused = [k for k in keywords if k.lower().rstrip(".。!！?？") not in lowered]
    same_script = [k for k in unused if has_cjk(k) == (lang == "zh")]
    pool = same_script or unused
    if not pool:
        return None
    entry = rng.choice(pool)
    base = instruction.strip()
    if not _SENTENCE_END.search(base):
        base += "。" if lang == "zh" else "."
    if is_constraint(entry):
        return base + ("" if lang == "zh" else " ") + entry, {"constraint": entry}
    template = rng.choice(data_lines(f"keyword_templates_{lang}.txt"))
    return template.replace("{instruction}", base).replace("{keyword}", entry), {"keyword": entry}
