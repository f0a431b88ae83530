"""Records -> token ids and labels for supervised fine-tuning.

The rules (each one a way other trainers go wrong):

* The base model's own chat template renders the conversation; a tokenizer without one gets
  :data:`DEFAULT_CHAT_TEMPLATE` (stored on the tokenizer, so the saved adapter carries it) with the
  tokenizer's EOS as the declared end-of-turn token.
* The rendered text is encoded without adding special tokens again (the template already holds
  the BOS where the model wants one): no double BOS. Prompt and reply are encoded in one batched
  call, so the prompt ids are exactly what :func:`render_prompt_ids` gives at generation time.
* Labels are -100 on every prompt/system token, found from the prompt's *length*, never by
  comparing ids with the pad id (SmolLM2's pad is its EOS, which must be trained).
* The reply ends with the template's end-of-turn token (the last special token after the reply
  text; EOS appended when the template closes with none); it is trained, and what the template
  adds after it (a newline) is dropped.
* Too long: the prompt is cut (keeping a leading BOS and its end, where the assistant header is),
  never the reply. An example whose reply alone leaves no room for a prompt is dropped and
  reported; an example with no reply tokens at all is a :class:`DataError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import ConfigError, DataError
from ..core.records import Record, read_numbered_records, rejected
from ..text.prompt import join_prompt

IGNORE = -100
MIN_PROMPT_TOKENS = 16  # a reply left with fewer prompt tokens than this is dropped, not trained

# Used only for a tokenizer that has no chat template of its own. `eos_token` is the declared
# end-of-turn token; `bos` is filled in when the tokenizer itself adds a BOS on encode.
DEFAULT_CHAT_TEMPLATE = (
    "{bos}{{% for message in messages %}}"
    "{{% if message['role'] == 'system' %}}{{{{ '### System:\\n' + message['content'] + '\\n\\n' }}}}"
    "{{% elif message['role'] == 'user' %}}{{{{ '### User:\\n' + message['content'] + '\\n\\n' }}}}"
    "{{% else %}}{{{{ '### Assistant:\\n' + message['content'] + eos_token + '\\n\\n' }}}}{{% endif %}}"
    "{{% endfor %}}{{% if add_generation_prompt %}}{{{{ '### Assistant:\\n' }}}}{{% endif %}}"
)


@dataclass
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]          # same length as input_ids; IGNORE on prompt tokens (unshifted)
    truncated: bool = False    # the prompt was cut to fit max_len

    @property
    def n_trainable(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)

    def __len__(self) -> int:
        return len(self.input_ids)


class ExampleDropped(ValueError):
    """The example cannot fit max_len without cutting its reply; callers report and skip it."""


# ---------------------------------------------------------------- reading

def load_rows(paths: Iterable[str | os.PathLike[str]]) -> list[Record]:
    """Every record of every file (any export format, detected per line), read fully first.

    Each record remembers ``path:line`` (attribute ``where``, not serialized) so that an error
    about it names the line.
    """
    rows: list[Record] = []
    for path in paths:
        for number, record in read_numbered_records(path):
            record.where = (str(path), number)  # type: ignore[attr-defined]
            rows.append(record)
    return rows


def check_replies(records: Iterable[Record]) -> None:
    """Fail fast (before any model is loaded) on a record with an empty reply."""
    for record in records:
        if not record.output.strip():
            raise _data_error(record, "empty reply: the example would have zero trainable tokens")


def _data_error(record: Record, message: str) -> DataError:
    path, line = getattr(record, "where", ("<records>", None))
    return DataError(path, line, message)


# ---------------------------------------------------------------- rendering

def build_messages(record: Record) -> list[dict[str, str]]:
    """system (when the record has one), user = instruction [+ blank line + input] (``join_prompt``, as
    export writes it), assistant = output."""
    messages = []
    system = record.meta.get("system") if isinstance(record.meta, dict) else None
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": join_prompt(record.instruction, record.input)})
    messages.append({"role": "assistant", "content": record.output})
    return messages


def _adds_bos(tokenizer: Any) -> bool:
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a").input_ids[:1] == [bos]


def prepare_tokenizer(tokenizer: Any) -> dict[str, Any]:
    """Give the tokenizer what training and batched generation need; idempotent.

    A missing chat template becomes :data:`DEFAULT_CHAT_TEMPLATE`; a missing pad token becomes
    the EOS token (only used to fill batches: masks are built from lengths). Returns what was
    changed, for the resolved config.
    """
    changed: dict[str, Any] = {}
    if tokenizer.eos_token_id is None:
        raise ConfigError("the tokenizer has no EOS token, so the end of a reply cannot be marked; "
                          "use a base model whose tokenizer declares one", "--base-model")
    if not getattr(tokenizer, "chat_template", None):
        bos = "{{ bos_token }}" if _adds_bos(tokenizer) else ""
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE.format(bos=bos)
        changed["chat_template"] = "default (### System/User/Assistant, EOS ends a turn)"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
        changed["pad_token"] = tokenizer.eos_token
    return changed


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _special_ids(tokenizer: Any) -> set[int]:
    ids = set(tokenizer.all_special_ids)
    for token_id, token in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(token, "special", False):
            ids.add(token_id)
    return ids


def _drop_double_bos(tokenizer: Any, ids: list[int]) -> list[int]:
    bos = tokenizer.bos_token_id
    if bos is not None and len(ids) >= 2 and ids[0] == bos and ids[1] == bos:
        return ids[1:]
    return ids


def render_prompt_ids(tokenizer: Any, record: Record) -> list[int]:
    """The prompt (system + user + the assistant header) as ids, for generation."""
    prepare_tokenizer(tokenizer)
    text = _render(tokenizer, build_messages(record)[:-1], generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False).input_ids
    return _drop_double_bos(tokenizer, list(ids))


def _split_rendered(tokenizer: Any, record: Record) -> tuple[str, str]:
    """The full rendering cut at the start of the reply: (prompt text, reply text + end of turn)."""
    messages = build_messages(record)
    prompt = _render(tokenizer, messages[:-1], generation_prompt=True)
    full = _render(tokenizer, messages, generation_prompt=False)
    if full.startswith(prompt):
        return prompt, full[len(prompt):]
    # A template whose generation prompt is not a prefix of the full rendering: cut before the
    # reply text (the last occurrence: the reply comes last).
    reply = record.output.strip()
    start = full.rfind(reply) if reply else -1
    if start < 0:
        raise ConfigError("the chat template does not reproduce the assistant reply; cannot tell "
                          "prompt from reply", "--base-model")
    return full[:start], full[start:]


def tokenize_example(tokenizer: Any, record: Record, max_len: int) -> TokenizedExample:
    """Token ids and labels for one record; see the module docstring for the rules.

    Raises :class:`DataError` (file:line) when the reply has no tokens, :class:`ExampleDropped`
    when the reply alone does not leave room for the prompt within ``max_len``.
    """
    prepare_tokenizer(tokenizer)
    check_replies([record])
    prompt_text, reply_text = _split_rendered(tokenizer, record)
    prompt_ids, reply_ids = (list(ids) for ids in
                             tokenizer([prompt_text, reply_text], add_special_tokens=False).input_ids)
    prompt_ids = _drop_double_bos(tokenizer, prompt_ids)
    reply_ids, n_text = _close_turn(tokenizer, reply_ids)
    if n_text == 0:  # the template dropped the reply text: only end-of-turn would be trained
        raise _data_error(record, "zero trainable reply tokens after rendering with the chat template")

    truncated = False
    if len(prompt_ids) + len(reply_ids) > max_len:
        room = max_len - len(reply_ids)
        if room < min(len(prompt_ids), MIN_PROMPT_TOKENS):
            raise ExampleDropped(f"reply of {len(reply_ids)} tokens leaves {max(room, 0)} of "
                                 f"--max-len {max_len} for a {len(prompt_ids)}-token prompt")
        prompt_ids = _cut_prompt(tokenizer, prompt_ids, room)
        truncated = True
    return TokenizedExample(input_ids=prompt_ids + reply_ids,
                            labels=[IGNORE] * len(prompt_ids) + reply_ids, truncated=truncated)


def _close_turn(tokenizer: Any, reply_ids: list[int]) -> tuple[list[int], int]:
    """End the reply at the template's end-of-turn token (its last special token), appending EOS
    when there is none. Returns the ids and how many of them are reply text (not special)."""
    special = _special_ids(tokenizer)
    last = max((i for i, t in enumerate(reply_ids) if t in special), default=None)
    closed = reply_ids[:last + 1] if last is not None else reply_ids + [tokenizer.eos_token_id]
    return closed, sum(1 for t in closed[:-1] if t not in special)


def _cut_prompt(tokenizer: Any, prompt_ids: list[int], room: int) -> list[int]:
    """Keep a leading BOS and the last ``room`` - 1 tokens (the end holds the assistant header)."""
    head = 1 if tokenizer.bos_token_id is not None and prompt_ids[:1] == [tokenizer.bos_token_id] else 0
    return prompt_ids[:head] + prompt_ids[len(prompt_ids) - (room - head):]


# ---------------------------------------------------------------- a whole dataset

@dataclass
class TokenizeReport:
    examples: list[TokenizedExample]
    kept: list[Record]             # the record of each example, in the same order
    rejected: list[dict]           # `sftdata.records.rejected` rows of the dropped examples
    truncated: int = 0

    @property
    def dropped(self) -> int:
        return len(self.rejected)


def tokenize_records(tokenizer: Any, records: Sequence[Record], max_len: int) -> TokenizeReport:
    """Tokenize every record; dropped ones become rejected rows (stage ``finetune``)."""
    report = TokenizeReport(examples=[], kept=[], rejected=[])
    for record in records:
        try:
            example = tokenize_example(tokenizer, record, max_len)
        except ExampleDropped as exc:
            report.rejected.append(rejected(record, "finetune", "too_long", {"detail": str(exc)}))
            continue
        report.examples.append(example)
        report.kept.append(record)
        report.truncated += example.truncated
    return report
