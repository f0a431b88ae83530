"""Junk a weak model writes that rules can see: copies of the prompt's own examples, answer-shaped
instructions, prompt scaffolding leaking into a record, and text damaged by decoding.

Used twice, with the same reasons: by generate's in-loop filters (which know the very prompt each
reply answered) and by ``clean`` (which knows only what the shipped prompt templates show, the
examples every generation prompt carries). Each detector returns ``(reason, detail)`` or None:

    copied_example   an input or output that is one of the prompt's example texts: equal after
                     normalization (case, spacing, punctuation, list numbering, a "Output:" label),
                     holding one whole, one of its parts, or ROUGE-L F > 0.7 against one
    answer_shaped    an instruction that is an answer ("Yes, ...", "是的，...") or list debris
                     ("c. 3.", a bare marker, nothing left but numbers)
    scaffolding      the prompt's own framing inside a record: "Here is a sample for another
                     task", "Task 9:", "任务 3：", "Class label:", any long line of a template
    decode_damage    U+FFFD replacement characters: bytes a decoder could not read (a multi-byte
                     character cut between tokens); never valid in a record

Short texts (under four words, or four CJK characters) are never "copies": a real task may share a
label such as "Positive" with an example.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from ..core.stats import text_length

Verdict = tuple[str, dict[str, Any]]
COPY_ROUGE = 0.7  # the Self-Instruct novelty threshold, reused: above it, a text is a near copy
MIN_COPY_UNITS = 4  # words (or CJK characters) a text needs before it can count as a copy
GENERATION_TEMPLATES = ("instances_input_first", "instances_output_first", "alpaca", "alpaca_example",
                        "self_instruct_instructions", "classify")

# labels whose values are example texts in the prompts (en and zh), and what they start
_LABEL = re.compile(
    r"^[ \t]*(?:[-*][ \t]+)?(?:\*\*)?(?P<name>instruction|input|output|class label|label|指令|输入|输出|类别标签|标签)"
    r"(?:\*\*)?[ \t]*[:：][ \t]*(?:\*\*)?[ \t]*", re.I)
# lines that end an example value: a task / example header, or a blank line
_HEADER = re.compile(r"^[ \t]*(?:(?:task|example|任务|示例)[ \t]*\d*[ \t]*[:：]?|\d{1,3}[.)、])[ \t]*$", re.I)
_NOINPUT = re.compile(r"^(?:<no ?input>|无输入|<无输入>)$", re.I)

# numbering anywhere: "1." "2)" "(3)" "4、" "一、" "c." at a start; bullets; "Output:" labels
_NUMBERING = re.compile(r"(?:(?<=\s)|^)(?:[(（]?\d{1,3}[.)）、](?!\d)|[(（]\d{1,3}[)）]|[一二三四五六七八九十]{1,3}[、．.]"
                        r"|[-*•·](?=\s))")
_PUNCT = re.compile(r"[\s\"'“”‘’「」『』`*_#.,;:!?，。；：！？、（）()\[\]【】<>《》…—–-]+")

_ANSWER_OPENING = re.compile(
    r"^[\"'“]?(?:yes|no|yeah|yep|nope|correct|incorrect|true|false|right|wrong)\b[ \t]*[,.!;:]"
    r"|^(?:是的|是|对|对的|没错|不是|不对|不|否)[，,。！!；;]", re.I)
# "c. 3. ..." / "b) ..." open list debris; "A. Lincoln ..." is a name (a capital needs a number after it)
_LETTER_MARKER = re.compile(r"^[ \t]*[(（]?(?:[a-z][.)）](?:[ \t]|$)|[A-Za-z][.)）][ \t]*\d)")
_LIST_ONLY = re.compile(r"^[\W\d_a-zA-Z]{0,3}$|^[\s\W\d_]*$")

_SCAFFOLD = re.compile(
    r"here is a sample for another task|now write the examples for this task|continue the list with"
    r"|numbered from task|write each task in exactly this format|give up to \d+ (?:different )?examples"
    r"|(?:^|\n)[ \t]*(?:\*\*)?(?:task|任务)[ \t]*\d{1,3}[ \t]*(?:\*\*)?[ \t]*[:：]"
    r"|(?:^|\n)[ \t]*(?:\*\*)?(?:class label|类别标签)(?:\*\*)?[ \t]*[:：]"
    r"|下面是另一个任务的样例|现在请为这个任务编写示例|请接着写|从任务\d+开始编号", re.I)
REPLACEMENT_CHAR = "\ufffd"


# ---------------------------------------------------------------- what a prompt shows

def prompt_examples(prompt: str, exclude: Iterable[str] = ()) -> list[str]:
    """The example texts a prompt shows: the values of its ``Instruction:`` / ``Input:`` / ``Output:`` /
    ``Class label:`` lines (their continuation lines too) and the items of a numbered task list,
    less the ``exclude`` texts (the task the prompt is about) and the "no input" placeholder."""
    skip = {normalize(text) for text in exclude if text.strip()}
    found: list[str] = []
    current: list[str] | None = None
    for line in prompt.split("\n"):
        label = _LABEL.match(line)
        if label or not line.strip() or _HEADER.match(line):
            if current is not None:
                found.append("\n".join(current).strip())
            current = [line[label.end():]] if label else None
            if not label and re.match(r"^[ \t]*\d{1,3}[.)、][ \t]*\S", line):
                found.append(line)  # an item of Self-Instruct's numbered task list
            continue
        if current is not None:
            current.append(line)
        elif re.match(r"^[ \t]*\d{1,3}[.)、][ \t]*\S", line):
            found.append(line)
    if current is not None:
        found.append("\n".join(current).strip())
    examples: list[str] = []
    for text in found:
        key = normalize(text)
        if key and key not in skip and not _NOINPUT.match(text.strip()) and text not in examples:
            examples.append(text.strip())
    return examples


@lru_cache(maxsize=8)
def template_examples(lang: str) -> tuple[str, ...]:
    """The example texts the shipped generation templates of ``lang`` show (every prompt carries them)."""
    from ..core.paths import load_prompt

    texts: list[str] = []
    for name in GENERATION_TEMPLATES:
        try:
            template = load_prompt(lang, name)
        except OSError:
            continue
        for text in prompt_examples(template):
            if "{" not in text and text not in texts:  # placeholders are not examples
                texts.append(text)
    return tuple(texts)


# ---------------------------------------------------------------- comparison

def normalize(text: str) -> str:
    """Case, spacing, punctuation, list numbering and bullets dropped: what a copy keeps of its source."""
    text = _LABEL.sub("", text.strip())
    text = _NUMBERING.sub(" ", text)
    return _PUNCT.sub(" ", text).casefold().strip()


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[str, ...]:
    from ..filter.tokenize import tokenize_auto

    return tuple(tokenize_auto(text))


def copied(text: str, examples: Sequence[str]) -> dict[str, Any] | None:
    """How ``text`` copies one of ``examples`` (``match``: equal, contains, part or rouge), else None."""
    if text_length(text) < MIN_COPY_UNITS or not examples:
        return None
    from ..filter.rouge import rouge_l_f

    key = normalize(text)
    mine = _tokens(key)
    for example in examples:
        other = normalize(example)
        if not other:
            continue
        if key == other:
            return {"match": "equal", "example": example[:120]}
        if text_length(example) >= MIN_COPY_UNITS and other in key:
            return {"match": "contains", "example": example[:120]}
        if key in other:
            return {"match": "part", "example": example[:120]}
        score = rouge_l_f(list(_tokens(other)), list(mine))
        if score > COPY_ROUGE:
            return {"match": "rouge", "rouge_l": round(score, 4), "example": example[:120]}
    return None


# ---------------------------------------------------------------- detectors

def decode_damage(*texts: str) -> Verdict | None:
    for field, text in zip(("instruction", "input", "output"), texts):
        if REPLACEMENT_CHAR in text:
            return "decode_damage", {"field": field, "count": text.count(REPLACEMENT_CHAR)}
    return None


def scaffolding(*texts: str) -> Verdict | None:
    for field, text in zip(("instruction", "input", "output"), texts):
        match = _SCAFFOLD.search(text)
        if match:
            return "scaffolding", {"field": field, "match": match.group(0).strip()[:60]}
    return None


def answer_shaped(instruction: str) -> Verdict | None:
    """An instruction that answers rather than asks, or what is left of a list item."""
    text = instruction.strip()
    if _ANSWER_OPENING.match(text):
        return "answer_shaped", {"kind": "answer"}
    if _LETTER_MARKER.match(text):
        return "answer_shaped", {"kind": "list_debris"}
    if _LIST_ONLY.match(normalize(text) if normalize(text) else ""):
        return "answer_shaped", {"kind": "list_debris"}
    return None


def instruction_junk(instruction: str, check_answer_shape: bool = True) -> Verdict | None:
    """decode_damage, scaffolding, answer_shaped on an instruction alone."""
    return (decode_damage(instruction) or scaffolding(instruction)
            or (answer_shaped(instruction) if check_answer_shape else None))


def record_junk(instruction: str, input_text: str, output: str, examples: Sequence[str],
                check_instruction: bool = True) -> Verdict | None:
    """Every detector on one record; ``examples``: the texts its prompt showed (see :func:`prompt_examples`)."""
    found = decode_damage(instruction, input_text, output)
    if found is None and check_instruction:
        found = instruction_junk(instruction)
    if found is None:
        found = scaffolding("", input_text, output)
    if found is None:
        for field, text in (("input", input_text), ("output", output)):
            detail = copied(text, examples)
            if detail is not None:
                return "copied_example", {"field": field, **detail}
    return found
