"""The user turn of a record: how every format and the trainer join instruction and input."""

from __future__ import annotations


def join_prompt(instruction: str, input: str) -> str:
    """``instruction``, then a blank line and ``input`` when there is one (a blank input counts as none).

    Export writes this into every conversation format and fine-tuning trains on it: one function, so
    the prompt a model was tuned on is the prompt the exported files show.
    """
    return f"{instruction}\n\n{input}" if input.strip() else instruction
