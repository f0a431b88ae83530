"""Split a reply into labeled blocks: the common core of the task and instance parsers.

A block is one task (or one instance): the text after a marker (``Task 1:``, ``2.``, ``Example 3``)
is its *header*, and labeled lines (``Input:``, ``输出：``) open *fields*; unlabeled lines continue
the field (or header) before them. A new block starts at a named marker, a separator line (``###``),
a label whose field the block already has, or a numbered line that is clearly the start of the next
item rather than a numbered list inside a field (``1. Preheat the oven`` in an output stays there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .reply import NUM_MARKER, SEPARATOR, match_label


@dataclass
class Block:
    opened_by_marker: bool = False
    header: list[str] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)  # in the order they were first opened
    raw: list[str] = field(default_factory=list)
    current: str | None = None  # field receiving continuation lines; None: the header

    def take(self, line: str, label: tuple[str, str] | None, rest: str) -> None:
        """``line`` joins the block: its ``label`` (name, value) opens that field, or else ``rest``
        (the line, less any marker) continues the current field or the header."""
        self.raw.append(line)
        if label:
            name, value = label
            self.fields.setdefault(name, []).append(value)
            self.current = name
        else:
            (self.fields[self.current] if self.current else self.header).append(rest)

    def text(self, name: str) -> str | None:
        if name not in self.fields:
            return None
        return "\n".join(self.fields[name]).strip()

    def header_text(self) -> str:
        return "\n".join(self.header).strip()

    def raw_text(self) -> str:
        return "\n".join(self.raw).strip()


@dataclass(frozen=True)
class Grammar:
    """What the blocks of one kind of reply look like."""

    aliases: dict[str, str]  # lower-case label -> canonical field ("" for echoed fields we ignore)
    labels: re.Pattern[str]
    named: re.Pattern[str]
    rank: dict[str, int]  # field order; a field earlier than the last one opened starts a new block
    ordered: bool = True


def split_blocks(text: str, grammar: Grammar) -> list[Block]:
    lines = text.split("\n")
    blocks: list[Block] = []
    cur: Block | None = None
    for i, line in enumerate(lines):
        if SEPARATOR.match(line):
            cur = None
            continue
        marker = grammar.named.match(line)
        named = marker is not None
        if marker is None:
            marker = NUM_MARKER.match(line)
        if marker is not None:
            rest = line[marker.end():]
            label = match_label(rest, grammar.labels, grammar.aliases)
            if _marker_opens(cur, named, label, lines, i, grammar):
                cur = Block(opened_by_marker=True)
                blocks.append(cur)
                cur.take(line, label, rest)
                continue
            if cur is not None and label and not named:  # "1. Input:" inside one task (Alpaca's own format)
                cur.take(line, label, rest)
                continue
        label = match_label(line, grammar.labels, grammar.aliases)
        if cur is None or (label and _starts_new(cur, label[0], grammar)):
            if cur is None and not line.strip():
                continue
            cur = Block(opened_by_marker=False)
            blocks.append(cur)
        cur.take(line, label, line)
    return blocks


def _starts_new(cur: Block, name: str, grammar: Grammar) -> bool:
    if not name:  # an echoed label ("Task: ...") never splits
        return False
    if name in cur.fields:
        return True
    if grammar.ordered and cur.fields:
        return grammar.rank.get(name, 0) < grammar.rank.get(list(cur.fields)[-1], 0)
    return False


def _marker_opens(cur: Block | None, named: bool, label: tuple[str, str] | None, lines: list[str], i: int,
                  grammar: Grammar) -> bool:
    """Does the marker on line ``i`` open a new block, or is it a numbered line inside a field?"""
    if named or cur is None or not cur.opened_by_marker and not cur.fields:
        return True
    if not cur.fields:
        # a numbered header after a numbered header: the previous item had no fields at all
        return cur.opened_by_marker and bool(cur.header_text()) and not _named_opened(cur, grammar)
    if label is not None:
        return _starts_new(cur, label[0], grammar)
    # "**2. Add the numbers**" then "Input: ..." opens the next task only where the tasks are numbered
    # headers; in a block opened by a label, "3. 3" before the next "Input:" is the list in its output
    nxt = _next_label(lines, i, grammar)
    return (nxt is not None and _starts_new(cur, nxt, grammar) and cur.opened_by_marker
            and not _named_opened(cur, grammar))


def _named_opened(cur: Block, grammar: Grammar) -> bool:
    return bool(cur.raw) and grammar.named.match(cur.raw[0]) is not None


def _next_label(lines: list[str], i: int, grammar: Grammar) -> str | None:
    for line in lines[i + 1:]:
        if not line.strip():
            continue
        marker = NUM_MARKER.match(line)
        rest = line[marker.end():] if marker else line
        label = match_label(rest, grammar.labels, grammar.aliases)
        return label[0] if label else None
    return None
