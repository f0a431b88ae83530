"""Rendering, label masking and truncation of fine-tuning examples (sftdata.finetune.data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftdata.core.errors import DataError
from sftdata.core.records import Record
from sftdata.finetune.data import (
    IGNORE,
    ExampleDropped,
    build_messages,
    load_rows,
    prepare_tokenizer,
    render_prompt_ids,
    tokenize_example,
    tokenize_records,
)
from sftdata.finetune.tiny import BOS_TEMPLATE, byte_tokenizer, smollm2_tokenizer

SYSTEM = "You answer in one sentence."
ROW = {"instruction": "Add the numbers.", "input": "2 and 3", "output": "The sum is 5."}


@pytest.fixture(scope="module")
def smol():
    return smollm2_tokenizer()


def write_formats(tmp_path: Path) -> dict[str, Path]:
    """The same example in every format the export stage writes (with a system prompt)."""
    user = ROW["instruction"] + "\n\n" + ROW["input"]
    rows = {
        "alpaca": {**ROW, "system": SYSTEM},
        "sharegpt": {"system": SYSTEM, "conversations": [{"from": "human", "value": user},
                                                         {"from": "gpt", "value": ROW["output"]}]},
        "messages": {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user},
                                  {"role": "assistant", "content": ROW["output"]}]},
        "prompt-completion": {"prompt": user, "completion": ROW["output"]},
    }
    paths = {}
    for name, row in rows.items():
        paths[name] = tmp_path / f"{name}.jsonl"
        paths[name].write_text(json.dumps(row) + "\n", encoding="utf-8")
    return paths


def assert_masked_exactly_on_prompt(tokenizer, record: Record, max_len: int = 512) -> None:
    example = tokenize_example(tokenizer, record, max_len)
    prompt = render_prompt_ids(tokenizer, record)
    n = len(prompt)
    assert example.input_ids[:n] == prompt  # the training prompt is the generation prompt
    assert example.labels[:n] == [IGNORE] * n
    assert example.labels[n:] == example.input_ids[n:]  # every reply token trained
    assert IGNORE not in example.labels[n:]
    reply = tokenizer.decode(example.input_ids[n:])
    assert reply == record.output + tokenizer.decode([tokenizer.eos_token_id])
    assert len(example.labels) == len(example.input_ids)


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "messages", "prompt-completion"])
def test_labels_masked_exactly_on_prompt_for_every_format(smol, tmp_path, fmt):
    (record,) = load_rows([write_formats(tmp_path)[fmt]])
    assert record.instruction == ROW["instruction"] and record.input == ROW["input"]
    assert_masked_exactly_on_prompt(smol, record)
    example = tokenize_example(smol, record, 512)
    prompt_text = smol.decode(example.input_ids[:len(render_prompt_ids(smol, record))])
    if fmt != "prompt-completion":  # the system prompt is rendered, and masked
        assert SYSTEM in prompt_text
    assert "2 and 3" in prompt_text and "<|im_start|>assistant\n" in prompt_text


def test_eos_is_trained_even_though_it_is_the_pad_token(smol):
    assert smol.eos_token == "<|im_end|>" and smol.pad_token_id == smol.eos_token_id  # the trap
    example = tokenize_example(smol, Record(**ROW), 512)
    assert example.input_ids[-1] == smol.eos_token_id
    assert example.labels[-1] == smol.eos_token_id  # trained, not masked as padding
    # the template's newline after <|im_end|> is not part of the example
    assert smol.decode(example.input_ids).endswith("The sum is 5.<|im_end|>")


def test_truncation_cuts_the_prompt_and_keeps_the_reply_and_eos(smol):
    long_input = " ".join(f"word{i}" for i in range(400))
    record = Record(instruction="Summarize.", input=long_input, output="A list of words.")
    full = tokenize_example(smol, record, 4096)
    assert not full.truncated
    cut = tokenize_example(smol, record, 64)
    assert cut.truncated and len(cut) == 64
    n_reply = full.n_trainable
    assert cut.input_ids[-n_reply:] == full.input_ids[-n_reply:]  # reply + EOS intact
    assert cut.labels[-n_reply:] == full.labels[-n_reply:] and cut.labels[-1] == smol.eos_token_id
    assert cut.labels[:-n_reply] == [IGNORE] * (64 - n_reply)
    assert cut.input_ids[0] == full.input_ids[0]  # the leading special token survives
    assert smol.decode(cut.input_ids[:64 - n_reply]).endswith("<|im_start|>assistant\n")


def test_reply_longer_than_max_len_is_dropped_and_reported(smol):
    long_reply = Record(instruction="Count.", output=" ".join(str(i) for i in range(200)))
    with pytest.raises(ExampleDropped):
        tokenize_example(smol, long_reply, 64)
    report = tokenize_records(smol, [Record(**ROW), long_reply], 64)
    assert len(report.examples) == 1 and report.dropped == 1
    assert report.rejected[0]["stage"] == "finetune" and report.rejected[0]["reason"] == "too_long"
    assert report.rejected[0]["record"]["output"] == long_reply.output


def test_zero_trainable_tokens_is_an_error_naming_the_line(smol, tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(ROW) + "\n" + json.dumps({**ROW, "output": "  "}) + "\n", encoding="utf-8")
    records = load_rows([path])
    with pytest.raises(DataError, match=r"data\.jsonl:2: .*zero trainable tokens"):
        tokenize_records(smol, records, 512)


def test_no_double_bos_when_template_and_tokenizer_both_add_one():
    tokenizer = byte_tokenizer(chat_template=BOS_TEMPLATE)
    bos = tokenizer.bos_token_id
    assert tokenizer("hi").input_ids[0] == bos  # the tokenizer adds a BOS on encode...
    assert tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False).startswith("<s>")
    record = Record(**ROW)
    example = tokenize_example(tokenizer, record, 512)
    assert example.input_ids[0] == bos and example.input_ids.count(bos) == 1
    assert render_prompt_ids(tokenizer, record).count(bos) == 1
    assert_masked_exactly_on_prompt(tokenizer, record)


def test_tokenizer_without_chat_template_or_pad_gets_the_default_template():
    tokenizer = byte_tokenizer()
    assert tokenizer.chat_template is None and tokenizer.pad_token is None
    changes = prepare_tokenizer(tokenizer)
    assert set(changes) == {"chat_template", "pad_token"} and tokenizer.pad_token == "</s>"
    assert prepare_tokenizer(tokenizer) == {}  # idempotent
    record = Record(instruction="Say hi.", output="Hi!", meta={"system": SYSTEM})
    example = tokenize_example(tokenizer, record, 512)
    text = tokenizer.decode(example.input_ids)
    assert text == f"<s>### System:\n{SYSTEM}\n\n### User:\nSay hi.\n\n### Assistant:\nHi!</s>"
    assert example.labels[-1] == tokenizer.eos_token_id and example.input_ids.count(1) == 1
    assert_masked_exactly_on_prompt(tokenizer, record)


def test_default_template_without_bos_when_the_tokenizer_adds_none():
    tokenizer = byte_tokenizer(add_bos=False)
    example = tokenize_example(tokenizer, Record(instruction="Say hi.", output="Hi!"), 512)
    assert tokenizer.bos_token_id not in example.input_ids
    assert tokenizer.decode(example.input_ids).startswith("### User:")


def test_build_messages():
    messages = build_messages(Record(instruction="Do it.", input="data", output="done", meta={"system": "S"}))
    assert messages == [{"role": "system", "content": "S"}, {"role": "user", "content": "Do it.\n\ndata"},
                        {"role": "assistant", "content": "done"}]
    assert build_messages(Record(instruction="Do it.", output="done"))[0] == {"role": "user", "content": "Do it."}


def test_load_rows_reads_every_format_and_reports_bad_lines(tmp_path):
    paths = write_formats(tmp_path)
    records = load_rows(paths.values())
    assert len(records) == 4 and {r.output for r in records} == {ROW["output"]}
    assert records[0].where == (str(paths["alpaca"]), 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROW) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2"):
        load_rows([bad])


def test_template_that_drops_the_reply_is_an_error(tmp_path):
    template = ("{% for m in messages %}<|{{ m['role'] }}|>{% if m['role'] != 'assistant' %}{{ m['content'] }}"
                "{% endif %}</s>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(ROW) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data\.jsonl:1: zero trainable reply tokens"):
        tokenize_example(byte_tokenizer(chat_template=template), load_rows([path])[0], 512)


def test_template_without_end_of_turn_token_gets_eos_appended():
    template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}assistant: {% endif %}")
    tokenizer = byte_tokenizer(chat_template=template, add_bos=False)
    example = tokenize_example(tokenizer, Record(instruction="Hi?", output="Hello."), 512)
    assert tokenizer.decode(example.input_ids) == "user: Hi?\nassistant: Hello.\n</s>"
    assert example.labels[-1] == tokenizer.eos_token_id
    assert tokenizer.decode([t for t in example.labels if t != IGNORE]) == "Hello.\n</s>"
