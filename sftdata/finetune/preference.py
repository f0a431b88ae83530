"""Preference pairs: reading every shape a preference trainer reads, and tokenizing them.

Accepted per line (detected like :mod:`sftdata.core.records` detects SFT shapes):

* TRL standard: ``{"prompt": str, "chosen": str, "rejected": str}`` (what ``sftdata pairs`` writes,
  with ``margin`` and ``provenance`` beside them);
* TRL conversational: ``prompt`` a list of messages, ``chosen`` / ``rejected`` lists holding the
  assistant turn; also TRL's implicit-prompt form (``chosen`` / ``rejected`` whole conversations
  sharing their prefix, no ``prompt``);
* LLaMA-Factory alpaca ranking: ``instruction``, ``input``, ``chosen``, ``rejected`` (, ``system``);
* LLaMA-Factory sharegpt ranking: ``conversations`` (the prompt turns) with ``chosen`` / ``rejected``
  each one ``{"from": "gpt", "value": ...}``.

Every prompt goes through the model's chat template, as ``sftdata finetune`` does for SFT data (a
plain-string TRL prompt becomes the user turn), so a DPO adapter trained on top of an SFT adapter
sees the same rendering. Each reply ends with the template's end-of-turn token, trained; see
:mod:`sftdata.finetune.data`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import DataError
from ..core.records import iter_json_lines
from .data import MIN_PROMPT_TOKENS, _close_turn, _cut_prompt, _drop_double_bos, _render, prepare_tokenizer

Messages = list[dict[str, str]]


@dataclass
class PreferencePair:
    prompt: Messages          # system / user / earlier turns, ending with the user turn
    chosen: str
    rejected: str
    meta: dict[str, Any] = field(default_factory=dict)
    where: tuple[str, int | None] = ("<pairs>", None)

    @property
    def prompt_key(self) -> str:
        """The last user turn, whitespace and case folded: what a leak-free split groups by."""
        users = [m["content"] for m in self.prompt if m["role"] == "user"]
        return " ".join((users[-1] if users else "").split()).casefold()

    def error(self, message: str) -> DataError:
        return DataError(self.where[0], self.where[1], message)


# ---------------------------------------------------------------- reading

def _text(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # sharegpt {"from": "gpt", "value": ...} or one message
        for key in ("value", "content"):
            if isinstance(value.get(key), str):
                return value[key]
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        assistant = [m for m in value if m.get("role", m.get("from")) in ("assistant", "gpt")]
        if len(assistant) == 1:
            return _text(assistant[0], name)
    raise ValueError(f"field '{name}' must be a string, a message, or a list holding one assistant message")


_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system"}


def _messages(turns: Any, name: str) -> Messages:
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"field '{name}' must be a non-empty list of messages")
    out: Messages = []
    for turn in turns:
        if not isinstance(turn, dict):
            raise ValueError(f"each message of '{name}' must be an object")
        role = turn.get("role", turn.get("from"))
        content = turn.get("content", turn.get("value"))
        if role not in _SHAREGPT_ROLES or not isinstance(content, str):
            raise ValueError(f"a message of '{name}' needs a role (user/assistant/system) and string content")
        out.append({"role": _SHAREGPT_ROLES[role], "content": content})
    if out[-1]["role"] != "user":
        raise ValueError(f"field '{name}' must end with a user turn (the reply is chosen/rejected)")
    return out


def _implicit_prompt(chosen: Any, rejected_turns: Any) -> tuple[Messages, str, str]:
    """TRL's implicit prompt: two whole conversations, the shared prefix is the prompt."""
    if not (isinstance(chosen, list) and isinstance(rejected_turns, list) and chosen and rejected_turns):
        raise ValueError("no 'prompt' field: 'chosen' and 'rejected' must then be whole conversations")
    prompt = _messages(chosen[:-1], "chosen")
    if _messages(rejected_turns[:-1], "rejected") != prompt:
        raise ValueError("'chosen' and 'rejected' conversations differ before their last turn")
    return prompt, _text(chosen[-1], "chosen"), _text(rejected_turns[-1], "rejected")


def pair_from_obj(obj: Any) -> PreferencePair:
    """One parsed JSON line -> a pair; raises ValueError naming what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if "chosen" not in obj or "rejected" not in obj:
        raise ValueError("a preference row needs 'chosen' and 'rejected'")
    system = obj.get("system") if isinstance(obj.get("system"), str) and obj.get("system") else None
    if "conversations" in obj:
        prompt = _messages(obj["conversations"], "conversations")
    elif "instruction" in obj:
        instruction, query = obj["instruction"], obj.get("input") or ""
        if not isinstance(instruction, str) or not instruction.strip() or not isinstance(query, str):
            raise ValueError("'instruction' must be a non-empty string and 'input' a string")
        prompt = [{"role": "user", "content": instruction + ("\n\n" + query if query else "")}]
    elif "prompt" in obj:
        raw = obj["prompt"]
        if isinstance(raw, str):
            if not raw.strip():
                raise ValueError("field 'prompt' is empty")
            prompt = [{"role": "user", "content": raw}]
        else:
            prompt = _messages(raw, "prompt")
    else:
        prompt, chosen, rejected_text = _implicit_prompt(obj["chosen"], obj["rejected"])
        return PreferencePair(prompt, chosen, rejected_text, meta=_meta(obj))
    if system and prompt[0]["role"] != "system":
        prompt = [{"role": "system", "content": system}, *prompt]
    chosen, rejected_text = _text(obj["chosen"], "chosen"), _text(obj["rejected"], "rejected")
    if not chosen.strip() or not rejected_text.strip():
        raise ValueError("'chosen' and 'rejected' must be non-empty")
    return PreferencePair(prompt, chosen, rejected_text, meta=_meta(obj))


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: obj[k] for k in ("margin", "provenance", "id") if k in obj}


def load_pairs(paths: Iterable[str | os.PathLike[str]]) -> list[PreferencePair]:
    """Every pair of every file, read fully first; a bad line is a DataError naming it."""
    pairs: list[PreferencePair] = []
    for path in paths:
        for number, obj in iter_json_lines(path):
            try:
                pair = pair_from_obj(obj)
            except ValueError as exc:
                raise DataError(path, number, str(exc)) from None
            pair.where = (str(path), number)
            pairs.append(pair)
    return pairs


def split_pairs(pairs: list[PreferencePair], fraction: float,
                seed: int) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """Hold out about ``fraction`` of the prompts: every pair of a prompt on the same side."""
    import random

    keys = sorted({p.prompt_key for p in pairs})
    if fraction <= 0 or len(keys) < 2:
        return pairs, []
    random.Random(seed).shuffle(keys)
    held = set(keys[:min(len(keys) - 1, max(1, round(len(keys) * fraction)))])
    return [p for p in pairs if p.prompt_key not in held], [p for p in pairs if p.prompt_key in held]


# ---------------------------------------------------------------- tokenizing

@dataclass
class TokenizedPair:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    truncated: bool = False

    def __len__(self) -> int:  # tokens in the shared-prompt layout: prompt once, both replies
        return len(self.prompt_ids) + len(self.chosen_ids) + len(self.rejected_ids)


def _reply_ids(tokenizer: Any, prompt: Messages, prompt_text: str, reply: str) -> list[int]:
    full = _render(tokenizer, [*prompt, {"role": "assistant", "content": reply}], generation_prompt=False)
    if full.startswith(prompt_text):
        reply_text = full[len(prompt_text):]
    else:  # a template whose generation prompt is not a prefix of the full rendering
        start = full.rfind(reply.strip())
        reply_text = full[start:] if start >= 0 else reply
    ids, n_text = _close_turn(tokenizer, list(tokenizer(reply_text, add_special_tokens=False).input_ids))
    return ids if n_text else []


def tokenize_pair(tokenizer: Any, pair: PreferencePair, max_len: int) -> TokenizedPair | None:
    """Ids of the prompt and of each reply (end-of-turn included); None when the longer reply
    leaves no room for a prompt within ``max_len`` (the prompt is cut from the front otherwise)."""
    prepare_tokenizer(tokenizer)
    prompt_text = _render(tokenizer, pair.prompt, generation_prompt=True)
    prompt_ids = _drop_double_bos(tokenizer, list(tokenizer(prompt_text, add_special_tokens=False).input_ids))
    chosen = _reply_ids(tokenizer, pair.prompt, prompt_text, pair.chosen)
    rejected_ids = _reply_ids(tokenizer, pair.prompt, prompt_text, pair.rejected)
    if not chosen or not rejected_ids:
        raise pair.error("a reply has zero tokens after rendering with the chat template")
    longest = max(len(chosen), len(rejected_ids))
    truncated = len(prompt_ids) + longest > max_len
    if truncated:
        room = max_len - longest
        if room < min(len(prompt_ids), MIN_PROMPT_TOKENS):
            return None
        prompt_ids = _cut_prompt(tokenizer, prompt_ids, room)
    return TokenizedPair(prompt_ids, chosen, rejected_ids, truncated)


@dataclass
class PairReport:
    examples: list[TokenizedPair]
    kept: list[PreferencePair]
    rejected: list[dict]
    truncated: int = 0


def tokenize_pairs(tokenizer: Any, pairs: Sequence[PreferencePair], max_len: int) -> PairReport:
    report = PairReport(examples=[], kept=[], rejected=[])
    for pair in pairs:
        example = tokenize_pair(tokenizer, pair, max_len)
        if example is None:
            report.rejected.append({"record": pair_row(pair), "stage": "finetune", "reason": "too_long",
                                    "detail": {"detail": f"a reply alone fills --max-len {max_len}"}})
            continue
        report.examples.append(example)
        report.kept.append(pair)
        report.truncated += example.truncated
    return report


def pair_row(pair: PreferencePair) -> dict[str, Any]:
    """The pair in TRL's conversational preference shape (what eval.jsonl / rejected.jsonl hold)."""
    return {"prompt": pair.prompt, "chosen": [{"role": "assistant", "content": pair.chosen}],
            "rejected": [{"role": "assistant", "content": pair.rejected}], **pair.meta}
