"""Evol-Instruct (Xu et al., 2023): the evolving prompts, reading their replies, and the elimination rules.

In-depth operations make an instruction harder (``constraints``, ``deepen``, ``concretize``,
``reasoning``, ``complicate-input``); the in-breadth one (``breadth``) writes a new, rarer task of
the same domain. Each is a prompt file ``prompts/<lang>/evol_<op>.txt``.

An evolution is eliminated, as in the paper, when
- it adds no information over its parent: an LLM equality check (``evol_equal.txt``) says "same";
- its answer is a short apology: "sorry" in under 80 words, or 抱歉 / 对不起 / 很遗憾 in under
  120 characters (:func:`sftdata.text.refusals.is_apology`, beside the other stages' refusal tests);
- its answer is only punctuation and stop words;
- it copies the evolving prompt's own phrases: the ``#...#`` markers of our prompt files and
  "given prompt", "rewritten prompt", "给定指令", "改写后的指令"... A phrase that the parent already
  contains is not a copy ("Sort the given input" stays legal).
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..core.paths import load_prompt
from ..core.records import Record
from ..text.cjk import HAN_CLASS
from ..text.refusals import is_apology
from ..text.reply import (
    clean_text,
    label_pattern,
    match_label,
    normalize_input,
    strip_closing,
    strip_wrapping,
)
from .config import EVOL_OPS, PARAPHRASE
from .prompting import prompt, stopwords

# every prompt whose wording an evolved instruction must not copy
REWRITE_PROMPTS = tuple(f"evol_{op.replace('-', '_')}" for op in EVOL_OPS) + (PARAPHRASE,)

# The paper's phrases, and the wording of our own prompts in both languages.
COPIED_PHRASES = (
    "#Given Prompt#", "#Rewritten Prompt#", "given prompt", "rewritten prompt", "given instruction", "rewritten instruction", "created instruction",
    "reworded instruction", "given input", "rewritten input",
    "给定提示", "给定的提示", "改写后的提示", "给定指令", "给定的指令", "改写后的指令", "改写的指令",
    "新创作的指令", "换了说法的指令", "给定输入", "给定的输入", "改写后的输入",
)
_MARKER = re.compile(r"[#＃][^#＃\n]{1,40}[#＃]")

_DIFFERENT = re.compile(r"\bdifferent\b|\bnot\s+(?:the\s+)?same\b|\bnot\s+equal\b|\bunequal\b|\bnot\s+identical\b"
                        r"|不同|不相同|不一样|不等同|不是相同|不等价")
_SAME = re.compile(r"\bsame\b|\bequal\b|\bidentical\b|\bequivalent\b|相同|一样|等同|等价")

_CHATTER = re.compile(r"^[ \t>*_]*(?:sure|certainly|of course|absolutely|okay|ok|great|here is|here's|below is|"
                      r"好的|当然|没问题|以下是|下面是|这是)\b", re.I)
_LABELS = {"instruction": "instruction", "new instruction": "instruction", "instructions": "instruction",
           "input": "input", "new input": "input", "指令": "instruction", "新指令": "instruction",
           "输入": "input", "新输入": "input"}
_LABEL = label_pattern(_LABELS)
_QUOTES = (('"', '"'), ("“", "”"), ("「", "」"), ("'", "'"), ("『", "』"))


def prompt_name(op: str) -> str:
    return PARAPHRASE if op == PARAPHRASE else f"evol_{op.replace('-', '_')}"


def rewrite_prompt(op: str, lang: str, parent: Record) -> str:
    return prompt(lang, prompt_name(op), instruction=parent.instruction, input=parent.input)


def equal_prompt(lang: str, first: str, second: str) -> str:
    return prompt(lang, "evol_equal", first=first, second=second)


def answer_prompt(lang: str, instruction: str, input_text: str) -> str:
    return prompt(lang, "answer", instruction=instruction, input=input_text)


# ------------------------------------------------------------------ reading a rewrite

def parse_rewrite(op: str, reply: str, parent: Record, marker: str) -> tuple[str, str] | None:
    """The (instruction, input) a rewriting reply holds, or None when nothing usable is left.

    ``marker`` is the last line of the prompt ("#Rewritten Instruction#:"): a reply that starts by
    echoing it is unwrapped; any other copy of the prompt's words is left for :func:`copied_phrase`.
    """
    text = _strip_marker(clean_text(reply).strip(), marker)
    lines = text.split("\n")
    if len(lines) > 1 and _CHATTER.match(lines[0]) and len(lines[0].split()) <= 15:
        text = "\n".join(lines[1:]).strip()
    text = strip_closing(_unfence_whole(text))
    if op == "complicate-input":
        label = match_label(text.split("\n", 1)[0], _LABEL, _LABELS)
        if label and label[0] == "input":
            text = (label[1] + text[len(text.split("\n", 1)[0]):]).strip()
        new_input = _unquote(text)
        return (parent.instruction, new_input) if new_input else None
    instruction, input_text = _split_input(text)
    instruction = _unquote(instruction)
    if not instruction:
        return None
    if op == "breadth":
        return instruction, normalize_input(input_text)
    return instruction, parent.input  # in-depth and paraphrase: the input stays the parent's


def _strip_marker(text: str, marker: str) -> str:
    bare = marker.strip().rstrip(":：").strip()
    for echo in (bare, bare.strip("#＃").strip()):
        if echo and text.lower().startswith(echo.lower()):
            return text[len(echo):].lstrip().lstrip(":：").strip()
    return text


def _unfence_whole(text: str) -> str:
    lines = text.split("\n")
    if len(lines) >= 2 and lines[0].strip().startswith(("```", "~~~")) and lines[-1].strip() in ("```", "~~~"):
        return "\n".join(lines[1:-1]).strip()
    return text


def _split_input(text: str) -> tuple[str, str]:
    """Instruction lines before an ``Input:`` label and what follows it; a leading label is dropped."""
    lines = text.split("\n")
    instruction: list[str] = []
    for i, line in enumerate(lines):
        label = match_label(line, _LABEL, _LABELS)
        if label and label[0] == "input" and i > 0:
            rest = "\n".join([label[1]] + lines[i + 1:]).strip()
            return "\n".join(instruction).strip(), rest
        if label and label[0] == "instruction" and not instruction:
            line = label[1]
        instruction.append(line)
    return "\n".join(instruction).strip(), ""


def _unquote(text: str) -> str:
    text = strip_wrapping(text.strip())
    for left, right in _QUOTES:
        inner = text[len(left):-len(right)] if len(text) > 2 else ""
        if text.startswith(left) and text.endswith(right) and left not in inner and right not in inner:
            return inner.strip()
    return text


# ------------------------------------------------------------------ elimination

@lru_cache(maxsize=1)
def _phrases() -> tuple[str, ...]:
    """The fixed phrases plus every ``#...#`` marker of the rewriting prompts, in both languages."""
    markers: set[str] = set()
    for lang in ("en", "zh"):
        for name in REWRITE_PROMPTS:
            markers.update(m.group(0) for m in _MARKER.finditer(load_prompt(lang, name)))
    return tuple(sorted(markers)) + COPIED_PHRASES


def copied_phrase(text: str, parent_text: str = "") -> str | None:
    """The first phrase of the rewriting prompts that ``text`` copies (and its parent does not hold)."""
    lowered, parent = _fold(text), _fold(parent_text)
    for phrase in _phrases():
        key = _fold(phrase)
        if key in lowered and key not in parent:
            if key.isascii() and not re.search(rf"(?<![a-z]){re.escape(key)}(?![a-z])", lowered):
                continue  # "given inputs" is not "given input"
            return phrase
    return None


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("＃", "#")).lower()


def parse_equal(reply: str) -> str | None:
    """The equality check's verdict: "same", "different", or None when the reply says neither."""
    text = re.sub(r"[*_`\"“”'「」]", "", clean_text(reply)).lower()
    different, same = _DIFFERENT.search(text), _SAME.search(text)
    if different and (not same or different.start() <= same.start()):
        return "different"
    return "same" if same else None


_CJK_RUN = re.compile(f"[{HAN_CLASS}]+")


def only_stopwords(answer: str) -> bool:
    """True when nothing but punctuation, whitespace and stop words (English or Chinese) is left."""
    en, zh = stopwords("en"), stopwords("zh")
    zh_words = sorted(zh, key=len, reverse=True)
    for run in _CJK_RUN.findall(answer):
        for word in zh_words:
            run = run.replace(word, "")
        if run:
            return False
    rest = _CJK_RUN.sub(" ", answer.lower().replace("’", "'"))
    return all(token in en for token in re.findall(r"[^\W_]+(?:'[^\W_]+)?", rest))


def answer_elimination(answer: str) -> tuple[str, dict] | None:
    """(reason, detail) when the answer eliminates its evolution, else None."""
    if not answer.strip():
        return "empty_output", {}
    if is_apology(answer):
        return "apology", {"words": len(answer.split())}
    if only_stopwords(answer):
        return "stopwords_only", {}
    return None
