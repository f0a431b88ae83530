"""Parsers for what models actually answer to the generation prompts, in English and Chinese.

Real replies wander from the requested format: ``1.`` ``1)`` ``1、`` ``(1)`` ``**1.**`` ``Task 1:`` or
``任务1：`` numbering that restarts or skips, ``Instruction:``/``指令：`` labels with ASCII or full-width
colons, bold or heading labels, ``<noinput>`` / ``无输入`` / ``N/A`` / ``None`` for an empty input,
code fences, JSON, a preamble ("Sure! Here are...") and closing chatter. The parsers recover every
item they can and return the rest as :class:`Unparsed` pieces with their raw text.

Contract (relied on by the fuzz tests): every parser accepts any ``str`` and never raises; entries come
back in reply order; when a non-blank reply yields no item at all, the whole reply is one
:class:`Unparsed` entry (``Parsed.unparsable`` is then true).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..text.blocks import Block, Grammar, split_blocks
from ..text.refusals import is_refusal
from ..text.reply import (
    BULLET,
    FENCE,
    NUM_MARKER,
    SEPARATOR,
    clean_text,
    is_closing,
    is_preamble,
    json_field,
    json_items,
    label_pattern,
    match_label,
    named_marker,
    normalize_input,
    strip_closing,
    strip_wrapping,
    unfence,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Unparsed:
    raw: str
    why: str


@dataclass(frozen=True)
class Task:
    instruction: str
    input: str
    output: str
    raw: str = ""


@dataclass(frozen=True)
class Instance:
    input: str
    output: str
    raw: str = ""


@dataclass(frozen=True)
class Parsed(Generic[T]):
    entries: tuple  # items (T) and Unparsed pieces, in reply order

    @property
    def items(self) -> list[T]:
        return [e for e in self.entries if not isinstance(e, Unparsed)]

    @property
    def unparsed(self) -> list[Unparsed]:
        return [e for e in self.entries if isinstance(e, Unparsed)]

    @property
    def unparsable(self) -> bool:
        """The reply held text but not one usable item."""
        return not self.items and bool(self.entries)


def _parse(text: str, from_json: Callable[[object], object], from_body: Callable[[str], list]) -> Parsed:
    """The frame of every parser: a reply holding a JSON list gives one entry per element
    (``from_json``), any other reply the entries ``from_body`` finds in its cleaned, unfenced text.
    A non-blank reply without a single item is one Unparsed entry; a non-``str`` gives no entry."""
    if not isinstance(text, str):
        return Parsed(())
    body = unfence(clean_text(text)).strip()
    items = json_items(body)
    entries = [from_json(obj) for obj in items] if items is not None else from_body(body)
    if not any(not isinstance(e, Unparsed) for e in entries) and text.strip():
        entries = [Unparsed(text.strip(), "no item could be recovered from the reply")]
    return Parsed(tuple(entries))


# ------------------------------------------------------------------ field vocabularies

INS, INP, OUT, LAB = "instruction", "input", "output", "label"
_INSTRUCTION = {"instruction": INS, "task": INS, "task description": INS, "prompt": INS,
                "指令": INS, "任务": INS, "任务描述": INS, "指示": INS}
_INPUT = {"input": INP, "inputs": INP, "context": INP, "输入": INP, "输入内容": INP}
_OUTPUT = {"output": OUT, "response": OUT, "expected output": OUT, "输出": OUT, "回答": OUT, "回复": OUT, "输出内容": OUT}
_LABEL = {"class label": LAB, "label": LAB, "class": LAB, "category": LAB, "类别标签": LAB, "分类标签": LAB,
          "类别": LAB, "标签": LAB, "分类": LAB}
_ECHO = {"instruction": "", "task": "", "指令": "", "任务": ""}


def _grammar(aliases: dict[str, str], named: str, order: list[str], ordered: bool = True) -> Grammar:
    return Grammar(aliases=aliases, labels=label_pattern(aliases), named=named_marker(named),
                   rank={name: i for i, name in enumerate(order)}, ordered=ordered)


_TASKS = _grammar({**_INSTRUCTION, **_INPUT, **_OUTPUT}, "tasks", [INS, INP, OUT])
_INPUT_FIRST = _grammar({**_ECHO, **_INPUT, **_OUTPUT}, "instances", [INP, OUT])
_OUTPUT_FIRST = _grammar({**_ECHO, **_LABEL, **{k: LAB for k in _OUTPUT}, **_INPUT}, "instances", [LAB, INP],
                         ordered=False)
_LIST_NAMED = named_marker("list")


# ------------------------------------------------------------------ instruction lists

def parse_instructions(text: str) -> Parsed[str]:
    """Instructions from a reply that continues a numbered list of tasks (Self-Instruct step 1)."""
    return _parse(text, _json_instruction, _instructions_in)


def _instructions_in(body: str) -> list:
    lines = [line for line in body.split("\n") if not FENCE.match(line)]
    numbered = any(_LIST_NAMED.match(line) or NUM_MARKER.match(line) for line in lines)
    chunks: list[tuple[bool, list[str]]] = []  # (opened by a marker, lines)
    for line in lines:
        if SEPARATOR.match(line):
            chunks.append((False, []))
            continue
        marker = _LIST_NAMED.match(line) or NUM_MARKER.match(line) or (None if numbered else BULLET.match(line))
        label = match_label(line, _TASKS.labels, _TASKS.aliases)
        if marker is not None:
            chunks.append((True, [line[marker.end():]]))
        elif label and label[0] == INS and (not chunks or not chunks[-1][0] or _instruction_seen(chunks[-1][1])):
            chunks.append((True, [line]))  # "Instruction: ..." blocks without numbers
        elif chunks:
            chunks[-1][1].append(line)
        else:
            chunks.append((False, [line]))
    if not any(by_marker for by_marker, _ in chunks):
        # no numbering at all: one instruction per line, chatter lines aside
        lines = [line for _, chunk in chunks for line in chunk
                 if line.strip() and not is_preamble(line) and not is_closing(line) and not is_refusal(line)]
        return [_instruction_item([line]) for line in lines]
    entries: list = []
    for index, (by_marker, chunk) in enumerate(chunks):
        if not by_marker:
            entries += _loose_chunk(chunk, first=index == 0, last=index == len(chunks) - 1)
            continue
        entries.append(_instruction_item(chunk))
    return [e for e in entries if e is not None]


def _instruction_seen(lines: list[str]) -> bool:
    return any((lab := match_label(line, _TASKS.labels, _TASKS.aliases)) and lab[0] == INS for line in lines)


def _loose_chunk(chunk: list[str], first: bool, last: bool) -> list:
    """Text outside any numbered item: a preamble, closing chatter, or (first, not chatter) a continuation."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", "\n".join(chunk)) if p.strip()]
    if not paragraphs:
        return []
    if first:
        kept = [line for line in paragraphs[0].split("\n") if line.strip() and not is_preamble(line)]
        if kept and not is_closing(kept[0]) and not is_refusal(kept[0]):
            return [_instruction_item(kept)]
        return []
    if last or all(is_closing(p) or is_preamble(p) for p in paragraphs):
        return []
    return [Unparsed("\n".join(chunk).strip(), "text between items that is not a numbered item")]


def _instruction_item(chunk: list[str]) -> str | Unparsed | None:
    raw = "\n".join(chunk).strip()
    # an instruction is one paragraph: what follows a blank line is chatter or an input we do not want
    lines: list[str] = []
    for line in chunk:
        if not line.strip():
            if lines:
                break
            continue
        label = match_label(line, _TASKS.labels, _TASKS.aliases)
        if label is not None:
            if label[0] != INS:
                break  # "Input:" / "Output:" after the instruction: the instruction is complete
            line = label[1]
        lines.append(line)
    text = _clean_instruction(" ".join(lines))
    if not raw:
        return None
    if not text:
        return Unparsed(raw, "empty item")
    if not re.search(r"\w", text):
        return Unparsed(raw, "item holds no words")
    return text


_TITLE = re.compile(r"^(?:\*\*|__)([^*_\n]{1,60}?)(?:\*\*|__)\s*[:：\-–—]\s*(?=\S)|^(?:\*\*|__)([^*_\n]{1,60}?)[:：](?:\*\*|__)\s*(?=\S)")
_QUOTES = [('"', '"'), ("“", "”"), ("「", "」"), ("『", "』"), ("'", "'")]


# **bold** / __bold__. An identifier is not bold: __init__, __eq__ and **kwargs stay as they are.
_BOLD = re.compile(r"(\*\*|__)(.+?)\1")
_STRAY_BOLD = re.compile(r"(?<![(,\s])\*\*|\*\*(?!\w)")  # a lone "**" not opening an argument name


def _unbold(match: re.Match) -> str:
    marker, inner = match.group(1), match.group(2)
    if marker == "__" and re.fullmatch(r"\w+", inner):
        return match.group()
    return inner


def _clean_instruction(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    for _ in range(3):  # "9. 1. Write..." / "10. Task 3: Write...": numbering the model doubled
        marker = NUM_MARKER.match(text) or _LIST_NAMED.match(text)
        if marker is None or marker.end() == 0 or marker.end() >= len(text):
            break
        text = text[marker.end():]
    title = _TITLE.match(text)
    if title and len((title.group(1) or title.group(2)).split()) <= 6:
        text = text[title.end():]  # "**Creative writing:** Write a poem..." -> the instruction
    text = _BOLD.sub(_unbold, text)
    text = _STRAY_BOLD.sub("", text).strip()
    label = match_label(text, _TASKS.labels, _TASKS.aliases)
    if label is not None and label[0] == INS:
        text = label[1].strip()
    for left, right in _QUOTES:
        inner = text[len(left):-len(right)] if len(text) > 2 else ""
        if text.startswith(left) and text.endswith(right) and left not in inner and right not in inner:
            text = inner.strip()
    return text


def _json_instruction(obj: object) -> str | Unparsed:
    value = obj if isinstance(obj, str) else json_field(obj, ("instruction", "task", "prompt", "指令", "任务"))
    text = _clean_instruction(value) if value is not None else ""
    return text if text else Unparsed(_raw_json(obj), "JSON item without an instruction")


def _raw_json(obj: object) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)[:4000]


# ------------------------------------------------------------------ complete tasks (Alpaca mode)

def parse_tasks(text: str) -> Parsed[Task]:
    """Complete tasks (instruction, input, output) from a one-pass Alpaca-style reply."""
    return _parse(text, _json_task, _tasks_in)


def _tasks_in(body: str) -> list:
    blocks = split_blocks(body, _TASKS)
    entries: list = []
    for index, block in enumerate(blocks):
        last = index == len(blocks) - 1
        if not block.fields and not block.opened_by_marker and (index == 0 or last):
            continue  # preamble or closing chatter
        entries.append(_task(block, last))
    return entries


_NO_OUTPUT = {"<nooutput>", "<no output>", "nooutput", "无输出", "<无输出>"}


def _task(block: Block, last: bool) -> Task | Unparsed:
    raw = block.raw_text() or block.header_text()
    header = _clean_instruction(block.header_text())
    instruction = block.text(INS)
    instruction = _clean_instruction(instruction) if instruction else header
    output = block.text(OUT)
    if not instruction:
        return Unparsed(raw, "task without an instruction")
    if output is None:
        return Unparsed(raw, "task without an output")
    output = strip_wrapping(strip_closing(output) if last else output)
    if output.lower() in _NO_OUTPUT:
        output = ""  # Alpaca's marker for a task the model cannot answer: an empty output, rejected later
    return Task(instruction, normalize_input(block.text(INP) or ""), output, raw)


def _json_task(obj: object) -> Task | Unparsed:
    instruction = json_field(obj, ("instruction", "task", "prompt", "指令", "任务"))
    output = json_field(obj, ("output", "response", "answer", "输出", "回答"))
    if not instruction or not instruction.strip() or output is None:
        return Unparsed(_raw_json(obj), "JSON task without an instruction or an output")
    return Task(_clean_instruction(instruction), normalize_input(json_field(obj, ("input", "context", "输入")) or ""),
                output.strip(), _raw_json(obj))


# ------------------------------------------------------------------ instances (Self-Instruct step 3)

def parse_instances(text: str, output_first: bool = False) -> Parsed[Instance]:
    """Instances for one task: ``Input:``/``Output:`` pairs, or ``Class label:`` then ``Input:`` when
    ``output_first`` (classification tasks). An input-first reply with no labels at all is one output."""
    return _parse(text, _json_instance, lambda body: _instances_in(body, output_first))


def _instances_in(body: str, output_first: bool) -> list:
    blocks = split_blocks(body, _OUTPUT_FIRST if output_first else _INPUT_FIRST)
    if not output_first and len(blocks) == 1 and not blocks[0].fields:
        return [_bare_output(blocks[0])]
    entries: list = []
    for index, block in enumerate(blocks):
        last = index == len(blocks) - 1
        if not block.fields and not block.opened_by_marker and (index == 0 or last):
            continue
        if set(block.fields) <= {""} and not block.header_text() and not block.opened_by_marker:
            continue  # only an echo of the task
        entries.append(_instance(block, output_first, last))
    return entries


def _instance(block: Block, output_first: bool, last: bool) -> Instance | Unparsed:
    raw = block.raw_text()
    key = LAB if output_first else OUT
    output = block.text(key)
    if output is None and not output_first and not any(f for f in block.fields if f):
        output = block.header_text()  # "Example 2\n<the output>" with no labels: the original's rule
    if output is None:
        what = "a class label" if output_first else "an output"
        return Unparsed(raw or block.header_text(), f"instance without {what}")
    output = strip_closing(output) if last else output
    if output_first:
        output = strip_wrapping(output.split("\n")[0]) if "\n\n" not in output else strip_wrapping(output)
    return Instance(normalize_input(block.text(INP) or ""), strip_wrapping(output), raw)


def _bare_output(block: Block) -> Instance | Unparsed:
    lines = [line for line in block.header if line.strip()]
    while len(lines) > 1 and is_preamble(lines[0]):
        lines.pop(0)
    output = strip_closing("\n".join(lines))
    if not output or is_refusal(output):
        return Unparsed(block.raw_text(), "a refusal or an empty reply")
    return Instance("", output, block.raw_text())


def _json_instance(obj: object) -> Instance | Unparsed:
    output = json_field(obj, ("output", "class_label", "label", "response", "answer", "输出", "类别标签", "标签"))
    if output is None:
        return Unparsed(_raw_json(obj), "JSON instance without an output")
    return Instance(normalize_input(json_field(obj, ("input", "context", "输入")) or ""), output.strip(),
                    _raw_json(obj))


# ------------------------------------------------------------------ classification answers

_YES_EN = re.compile(r"^(?:yes|yeah|yep|true|correct|it is a classification|this is a classification)\b")
_NO_EN = re.compile(r"^(?:no|nope|false|not|it is not|this is not|it isn't|this isn't)\b")
_YES_ZH = re.compile(r"^(?:是的|是(?!否)|对(?=[，。,.!！\s]|$)|属于)")
_NO_ZH = re.compile(r"^(?:不是|不属于|否|不(?![确清一知])|非)")
_UNSURE = re.compile(r"\b(?:not sure|unsure|maybe|unclear|it depends|depends|cannot tell|can't tell|both)\b"
                     r"|不确定|不清楚|不一定|无法|难以|也许|可能")


def parse_yes_no(text: str) -> bool | None:
    """A classification answer: True (yes / 是), False (no / 否), None when unclear (never guessed)."""
    if not isinstance(text, str):
        return None
    t = clean_text(text).strip().lower()
    t = re.sub(r"[*_`#>\"“”'「」]", "", t).strip()
    if re.search(r"[?？]", t):  # an echoed question: "Is it classification? Yes"
        after = re.split(r"[?？]", t)[-1].strip()
        t = after or t
    t = re.sub(r"^(?:answer|a|答案|回答|答|output|输出|classification|是否为分类任务|is it classification)\s*[:：]\s*",
               "", t).strip()
    first = re.sub(r"^[\W_]+", "", t)
    if _UNSURE.search(first[:40]):
        return None
    for pattern, value in ((_NO_ZH, False), (_YES_ZH, True), (_NO_EN, False), (_YES_EN, True)):
        if pattern.match(first):
            return value
    return _single_polarity(t)


def _single_polarity(t: str) -> bool | None:
    no = bool(re.search(r"\b(?:no|not)\b|不是|不属于|否|非分类", t))
    rest = re.sub(r"不是|是否|但是|就是|还是|或是|只是|总是|而是|可是|于是|也是|都是", "", t)
    yes = bool(re.search(r"\byes\b|是|属于分类", rest))
    if yes != no:
        return yes
    return None
