"""The generation prompts, built from the template files in ``prompts/<lang>/``.

Templates hold ``{name}`` placeholders; only the names a builder passes are replaced, so braces
elsewhere in a template (JSON, code) stay as written. The field labels of the task format
(``Instruction:`` / ``指令：``...) live in the templates themselves, in each language.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..core.paths import load_prompt
from .config import SeedTask

NAMES = ("self_instruct_instructions", "classify", "instances_input_first", "instances_output_first",
         "alpaca", "alpaca_example", "alpaca_noinput")


def render(text: str, **values: object) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


def one_line(text: str) -> str:
    """An instruction as one list line: whitespace collapsed, no trailing colon (as the original)."""
    return re.sub(r"\s+", " ", text).strip().rstrip(":：")


def instructions_prompt(lang: str, instructions: Sequence[str], count: int) -> str:
    """Self-Instruct step 1: a numbered list of tasks to continue with ``count`` new ones."""
    listing = "\n".join(f"{i}. {one_line(text)}" for i, text in enumerate(instructions, start=1))
    first = len(instructions) + 1
    return render(load_prompt(lang, "self_instruct_instructions"), tasks=listing, count=count,
                  first=first, last=first + count - 1).rstrip() + "\n"


def classify_prompt(lang: str, instruction: str) -> str:
    """Self-Instruct step 2: does the task have a finite set of output labels?"""
    return render(load_prompt(lang, "classify"), instruction=one_line(instruction)).rstrip() + "\n"


def instances_prompt(lang: str, instruction: str, output_first: bool, count: int) -> str:
    """Self-Instruct step 3: up to ``count`` instances, the label first for classification tasks."""
    name = "instances_output_first" if output_first else "instances_input_first"
    return render(load_prompt(lang, name), instruction=instruction.strip(), count=count).rstrip() + "\n"


def alpaca_prompt(lang: str, examples: Sequence[SeedTask], count: int) -> str:
    """Alpaca's one pass: the requirements, a few seed tasks in the task format, ``count`` tasks asked."""
    noinput = load_prompt(lang, "alpaca_noinput").strip()
    shown = []
    for number, task in enumerate(examples, start=1):
        task_input, output = task.instances[0] if task.instances else ("", "")
        shown.append(render(load_prompt(lang, "alpaca_example"), n=number, instruction=task.instruction.strip(),
                            input=task_input.strip() or noinput, output=output.strip()).strip())
    return render(load_prompt(lang, "alpaca"), count=count, examples="\n\n".join(shown),
                  next=len(examples) + 1, last=len(examples) + count, noinput=noinput).rstrip() + "\n"
