"""The dataset formats: one registry of how a record becomes a row of each format and back.

Field names are the ones LLaMA-Factory, TRL, axolotl, torchtune and ``datasets`` expect:

    alpaca             {"instruction", "input", "output"} (+ "system")
    sharegpt           {"conversations": [{"from": "human"|"gpt", "value"}], "system"?}
    messages           {"messages": [{"role": "system"?|"user"|"assistant", "content"}]}
    prompt-completion  {"prompt", "completion"}   (completion starts with TRL's separator, a newline)
    chat-prompt-completion  {"prompt": [{"role", "content"}...], "completion": [{"role": "assistant", ...}]}

Each :class:`Format` holds its row writer, its row reader, its LLaMA-Factory ``dataset_info.json``
entry and what the dataset card says about which trainers read it. Export, the readers of every stage
(``core.records.records_from_obj``), fine-tuning's choice of file, the report and the card iterate
:data:`FORMATS`; adding a format is one :func:`register` call (docs/architecture.md, "How to add a
format"). This module imports only core.errors and text.prompt (the one join): readers return
Record fields as a dict, writers take any object with a Record's attributes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..text.prompt import join_prompt, split_prompt
from .errors import ConfigError

Row = dict[str, Any]


# the one instruction + input join of every format with a single user turn (text.prompt says why)
prompt_text = join_prompt


@dataclass(frozen=True)
class Format:
    name: str
    # (record, system prompt, with_system: the rows carry a system column) -> one row
    write: Callable[[Any, str, bool], Row]
    # does a parsed JSON line look like this format's row? (None: rows are Records' own fields, read as such)
    matches: Callable[[Row], bool] | None
    # row -> Record fields (instruction, input, output, meta); raises ValueError naming what is wrong
    read: Callable[[Row], list[dict[str, Any]]] | None
    # LLaMA-Factory's dataset_info.json entry, without file_name (its "system" column is added when used)
    dataset_info: dict[str, Any]
    # (trainer, how it reads this format) pairs for the dataset card's "Using it" section
    usage: tuple[tuple[str, str], ...] = ()
    # the order fine-tuning and eval prefer an exported file in (lower first)
    train_preference: int = 100

    def columns(self, with_system: bool) -> list[str]:
        """The top-level columns of this format's files (what ``datasets`` shows)."""
        return list(self.write(_Empty(), "", with_system))

    def keeps_system(self) -> bool:
        """Whether its rows have a place for a system prompt."""
        probe = "<system prompt probe>"
        return probe in str(self.write(_Empty(), probe, True))

    def joins_prompt(self) -> bool:
        """Whether its rows hold instruction and input joined in one user turn (``prompt_text``), rather
        than as separate fields that the trainer joins its own way (alpaca)."""
        probe = _Empty()
        probe.instruction, probe.input = "<instruction probe>", "<input probe>"
        return json.dumps(prompt_text(probe.instruction, probe.input))[1:-1] in json.dumps(
            self.write(probe, "", False))

    def dataset_info_entry(self, file_name: str, with_system: bool) -> dict[str, Any]:
        """LLaMA-Factory's entry. Its parser sets every column or tag an entry leaves out of
        ``columns`` / ``tags`` to None, so each entry names all the ones its format uses."""
        entry: dict[str, Any] = {"file_name": file_name, **copy.deepcopy(self.dataset_info)}
        if "system" in self.columns(with_system):
            entry.setdefault("columns", {})["system"] = "system"
        return entry


class _Empty:
    instruction = input = output = ""


# ---------------------------------------------------------------- the formats

def _alpaca_row(rec: Any, system: str, with_system: bool) -> Row:
    row: Row = {"instruction": rec.instruction, "input": rec.input, "output": rec.output}
    if with_system:
        row["system"] = system
    return row


def _sharegpt_row(rec: Any, system: str, with_system: bool) -> Row:
    row: Row = {"conversations": [{"from": "human", "value": prompt_text(rec.instruction, rec.input)},
                                  {"from": "gpt", "value": rec.output}]}
    if with_system:
        row["system"] = system
    return row


def _messages_row(rec: Any, system: str, with_system: bool) -> Row:
    turns = [{"role": "system", "content": system}] if system else []
    turns += [{"role": "user", "content": prompt_text(rec.instruction, rec.input)},
              {"role": "assistant", "content": rec.output}]
    return {"messages": turns}


# TRL's SFTTrainer tokenizes prompt + completion as one string ({"prompt": "The sky is", "completion":
# " blue."} in its docs), so the completion carries the separator; without it the reply is glued to
# the prompt's last word.
COMPLETION_SEPARATOR = "\n"


def _prompt_completion_row(rec: Any, system: str, with_system: bool) -> Row:
    completion = rec.output if rec.output[:1].isspace() else COMPLETION_SEPARATOR + rec.output
    return {"prompt": prompt_text(rec.instruction, rec.input), "completion": completion}


def _chat_prompt_completion_row(rec: Any, system: str, with_system: bool) -> Row:
    """TRL's conversational prompt-completion: role/content lists in both fields (no separator needed:
    the chat template places the turns)."""
    prompt = [{"role": "system", "content": system}] if system else []
    prompt.append({"role": "user", "content": prompt_text(rec.instruction, rec.input)})
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": rec.output}]}


def str_field(obj: Row, key: str, default: str | None = None) -> str:
    """``obj[key]`` as a string (``default`` when absent); ValueError naming the field otherwise."""
    value = obj.get(key, default)
    if value is None:
        if default is None:
            raise ValueError(f"missing field '{key}'")
        return default
    if not isinstance(value, str):
        raise ValueError(f"field '{key}' must be a string, got {type(value).__name__}")
    return value


def _from_turns(turns: Any, role_key: str, text_key: str, user: str, assistant: str,
                system: str | None) -> dict[str, Any]:
    """The first user turn and the first assistant reply after it (a system turn becomes meta)."""
    if not isinstance(turns, list) or not turns:
        raise ValueError("conversation must be a non-empty list of turns")
    prompt, reply = None, None
    for turn in turns:
        if not isinstance(turn, dict) or not isinstance(turn.get(text_key), str):
            raise ValueError(f"each turn needs a string '{text_key}'")
        role = turn.get(role_key)
        if role == user and prompt is None:
            prompt = turn[text_key]
        elif role == assistant and prompt is not None and reply is None:
            reply = turn[text_key]
        elif role == "system" and system is None:
            system = turn[text_key]
    if prompt is None:
        raise ValueError(f"no '{user}' turn in conversation")
    instruction, input_text = split_prompt(prompt)
    return {"instruction": instruction, "input": input_text, "output": reply or "",
            "meta": {"system": system} if system else {}}


def _read_sharegpt(obj: Row) -> list[dict[str, Any]]:
    return [_from_turns(obj["conversations"], "from", "value", "human", "gpt", obj.get("system"))]


def _read_messages(obj: Row) -> list[dict[str, Any]]:
    return [_from_turns(obj["messages"], "role", "content", "user", "assistant", None)]


def _read_prompt_completion(obj: Row) -> list[dict[str, Any]]:
    instruction, input_text = split_prompt(str_field(obj, "prompt"))
    completion = str_field(obj, "completion")
    if completion.startswith(COMPLETION_SEPARATOR):  # the separator the writer added (one, not the reply's own)
        completion = completion[len(COMPLETION_SEPARATOR):]
    return [{"instruction": instruction, "input": input_text, "output": completion}]


def _read_chat_prompt_completion(obj: Row) -> list[dict[str, Any]]:
    if not isinstance(obj["completion"], list):
        raise ValueError("field 'completion' must be a list of turns when 'prompt' is one")
    return [_from_turns(obj["prompt"] + obj["completion"], "role", "content", "user", "assistant", None)]


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add (or replace) a format; export, the readers, the report and the card pick it up."""
    FORMATS[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    FORMATS.pop(name, None)


def names() -> tuple[str, ...]:
    return tuple(FORMATS)


def get(name: str) -> Format:
    """The format called ``name``; an unknown name is an error naming the option, never a guess."""
    if name not in FORMATS:
        raise ConfigError(f"unknown format '{name}' (choose from {', '.join(FORMATS)})", "--format")
    return FORMATS[name]


def for_training() -> list[Format]:
    """The formats in the order fine-tuning and eval prefer an exported file."""
    return sorted(FORMATS.values(), key=lambda f: f.train_preference)


_CHAT_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
              "system_tag": "system"}

register(Format(
    "alpaca", _alpaca_row, matches=None, read=None,  # alpaca rows are Records' own fields
    dataset_info={"formatting": "alpaca", "columns": {"prompt": "instruction", "query": "input",
                                                      "response": "output"}},
    usage=(("axolotl", "type: alpaca"), ("torchtune", "instruct dataset")), train_preference=2))
register(Format(
    "sharegpt", _sharegpt_row, matches=lambda obj: "conversations" in obj, read=_read_sharegpt,
    dataset_info={"formatting": "sharegpt", "columns": {"messages": "conversations"},
                  "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                           "assistant_tag": "gpt", "system_tag": "system"}},
    usage=(("axolotl", "type: chat_template, field_messages: conversations, message_property_mappings: "
                       "{role: from, content: value}"),
           ("torchtune", "chat dataset")), train_preference=1))
register(Format(
    # the system prompt is the first message, found through system_tag
    "messages", _messages_row, matches=lambda obj: "messages" in obj, read=_read_messages,
    dataset_info={"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": dict(_CHAT_TAGS)},
    usage=(("TRL's `SFTTrainer`", "its conversational format"), ("axolotl", "type: chat_template"),
           ("torchtune", "chat dataset")), train_preference=0))
register(Format(
    # alpaca with no query column: prompt -> prompt, response -> completion
    "prompt-completion", _prompt_completion_row,
    matches=lambda obj: ("prompt" in obj and "completion" in obj and "instruction" not in obj
                         and not isinstance(obj["prompt"], list)),
    read=_read_prompt_completion,
    dataset_info={"formatting": "alpaca", "columns": {"prompt": "prompt", "response": "completion"}},
    usage=(("TRL's `SFTTrainer`", "its prompt-completion format"),
           ("axolotl", "a custom type: field_instruction: prompt, field_output: completion, format: "
                       "'{instruction}'")), train_preference=3))
register(Format(
    # LLaMA-Factory has no entry for split conversational fields: no dataset_info.json entry
    "chat-prompt-completion", _chat_prompt_completion_row,
    matches=lambda obj: "prompt" in obj and "completion" in obj and isinstance(obj["prompt"], list),
    read=_read_chat_prompt_completion, dataset_info={},
    usage=(("TRL's `SFTTrainer`", "its conversational prompt-completion format (loss on the completion)"),),
    train_preference=4))
