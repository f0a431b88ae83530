"""The user turn of a record: how every format and the trainer join instruction and input.

One join, used by every exported format that has a single user turn (sharegpt, messages,
prompt-completion, chat-prompt-completion), by fine-tuning and by the readers (which split at the
first blank line, the reverse). alpaca keeps the two fields apart, so there the trainer joins them
its own way: LLaMA-Factory with one newline, axolotl and torchtune under ``### Input:`` headings
(:data:`TRAINER_JOINS`; the dataset card states both).
"""

from __future__ import annotations

PROMPT_JOIN = "\n\n"  # instruction, a blank line, input

# what a trainer reading the alpaca files puts between instruction and input (its own code, not ours)
TRAINER_JOINS = {
    "LLaMA-Factory": "\n",  # AlpacaDatasetConverter: "\n".join([instruction, input])
}


def join_prompt(instruction: str, input: str) -> str:
    """``instruction``, then a blank line and ``input`` when there is one (a blank input counts as none).

    Export writes this into every conversation format and fine-tuning trains on it: one function, so
    the prompt a model was tuned on is the prompt the exported files show.
    """
    return f"{instruction}{PROMPT_JOIN}{input}" if input.strip() else instruction


def split_prompt(prompt: str) -> tuple[str, str]:
    """The reverse of :func:`join_prompt`: (instruction, input), split at the first blank line."""
    instruction, _, input_text = prompt.partition(PROMPT_JOIN)
    return instruction.strip(), input_text.strip()
