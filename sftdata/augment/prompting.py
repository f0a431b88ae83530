"""Prompt rendering and the data files of the augment stage (templates, keyword templates, stop words).

Prompt files use two kinds of placeholder, both filled in one pass so that text substituted into
a prompt is never itself expanded:

    {name}                     replaced by the value (unknown names are left as they are)
    [[name]]...[[/name]]       kept only when the value ``name`` is non-empty
    [[!name]]...[[/!name]]     kept only when it is empty

That lets one file serve instructions with and without an input, in each language's own words.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from ..core.paths import load_prompt

_DATA = Path(__file__).resolve().parent.parent / "data"
_BLOCK = re.compile(r"\[\[(!?)(\w+)\]\](.*?)\[\[/\1\2\]\]", re.S)
_FIELD = re.compile(r"\{(\w+)\}")
_BLANK_RUN = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


def render(template: str, **values: str) -> str:
    """Fill ``template``; see the module docstring for the syntax."""
    def block(match: re.Match[str]) -> str:
        negated, name, body = match.groups()
        return body if bool(values.get(name)) != bool(negated) else ""

    text = _BLOCK.sub(block, template)
    # blank-line runs come from dropped blocks; collapse them before user text goes in
    text = _BLANK_RUN.sub("\n\n", text)
    return _FIELD.sub(lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), text).strip()


def prompt(lang: str, name: str, **values: str) -> str:
    return render(load_prompt(lang, name), **values)


def data_path(name: str) -> Path:
    return _DATA / name


@cache
def data_lines(name: str) -> tuple[str, ...]:
    """Non-blank, non-comment lines of a data file (``#`` at the start of a line is a comment)."""
    path = data_path(name)
    if not path.exists():
        return ()
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


@cache
def data_sections(name: str) -> dict[str, tuple[str, ...]]:
    """A data file split by ``[section]`` headers into lines per section."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in data_lines(name):
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            current = sections.setdefault(header.group(1), [])
        elif current is not None:
            current.append(line)
    return {key: tuple(value) for key, value in sections.items()}


@cache
def stopwords(lang: str) -> frozenset[str]:
    return frozenset(word for line in data_lines(f"stopwords_{lang}.txt") for word in line.split())


def record_text(instruction: str, input_text: str) -> str:
    """Instruction and input as one text: what the ROUGE index and the equality check compare."""
    return f"{instruction}\n{input_text}" if input_text else instruction
