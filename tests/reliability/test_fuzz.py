"""Hypothesis fuzzing of everything that reads untrusted text: the JSONL reader (any bytes a user's file
may hold) and every parser of an LLM reply (any text a model may answer), with the filter rules that
judge what the parsers return.

The documented contract: the reader yields Records or raises DataError naming ``file:line``, and
every Record it yields can be written back as UTF-8 JSON; the reply parsers never raise at all.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftdata.augment import evol
from sftdata.core.errors import DataError
from sftdata.core.records import Record, iter_json_lines, read_records
from sftdata.filter.rules import FilterConfig, check_instance, check_instruction, detect_lang
from sftdata.generate.parse import (
    Instance,
    Task,
    Unparsed,
    parse_instances,
    parse_instructions,
    parse_tasks,
    parse_yes_no,
)

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- the JSONL reader

FIELDS = ["instruction", "input", "output", "instances", "conversations", "messages", "prompt", "completion",
          "meta", "lang", "is_classification", "source", "parent_id", "system", "from", "value", "role",
          "content", "id", "name"]
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=12) | st.sampled_from(["human", "gpt", "user", "assistant", "system", ""]))
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5),
                                                                inner, max_size=5),
    max_leaves=12)
JSON_OBJECTS = st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6)
# raw byte-level damage real files carry
DAMAGE = st.sampled_from([b"", b"\r", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\x00", b"[", b"]", b"{", b"\"",
                          b"NaN", b"\\ud800", b"\t", b" ", b"\n", b"1e999", b"-", b"\xe4\xb8"])


@st.composite
def jsonl_files(draw) -> bytes:
    lines = []
    for obj in draw(st.lists(JSON_OBJECTS, max_size=6)):
        line = json.dumps(obj, ensure_ascii=draw(st.booleans())).encode("utf-8")
        if draw(st.integers(0, 4)) == 0:  # damage one line in five
            at = draw(st.integers(0, len(line)))
            line = line[:at] + draw(DAMAGE) + line[at + draw(st.integers(0, 3)):]
        lines.append(line)
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    return ending.join(lines) + draw(st.sampled_from([b"", ending]))


def read_back(data: bytes) -> list[Record] | DataError:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.jsonl"
        path.write_bytes(data)
        try:
            records = list(read_records(path))
        except DataError as exc:  # the one exception the reader raises on purpose
            assert exc.path == str(path) and str(exc).startswith(str(path))
            assert exc.line is None or 1 <= exc.line <= data.count(b"\n") + 1
            return exc
        list(iter_json_lines(path))  # the raw line reader agrees: no error where records had none
    return records


def check_records(records: list[Record] | DataError) -> None:
    if isinstance(records, DataError):
        return
    for record in records:
        assert isinstance(record.instruction, str) and record.instruction.strip()
        assert isinstance(record.input, str) and isinstance(record.output, str)
        assert isinstance(record.meta, dict)
        assert record.is_classification in (True, False, None)
        record.to_json().encode("utf-8")  # what was read can be written: no lone surrogate, no NaN
        json.loads(record.to_json())


@FUZZ
@given(st.binary(max_size=300))
def test_reader_on_random_bytes_yields_records_or_a_data_error(data):
    check_records(read_back(data))


@FUZZ
@given(jsonl_files())
def test_reader_on_damaged_jsonl_yields_records_or_a_data_error(data):
    check_records(read_back(data))


@settings(max_examples=60, deadline=None)
@given(st.lists(JSON_OBJECTS, min_size=1, max_size=5))
def test_crlf_and_lf_files_read_the_same(objects):
    lines = [json.dumps(obj, ensure_ascii=False).encode("utf-8") for obj in objects]
    lf, crlf = read_back(b"\n".join(lines) + b"\n"), read_back(b"\r\n".join(lines) + b"\r\n")
    if isinstance(lf, DataError):
        assert isinstance(crlf, DataError) and str(crlf).split(": ", 1)[1] == str(lf).split(": ", 1)[1]
    else:
        assert crlf == lf


# ---------------------------------------------------------------- LLM reply parsers

PIECES = ["1.", "2)", "3、", "(4)", "**5.**", "Task 6:", "任务7：", "Instruction:", "指令：", "Input:", "输入：",
          "Output:", "输出：", "Class label:", "类别标签：", "<noinput>", "无输入", "```", "```json", "###", "---",
          "Example 1", "Sure! Here are", "I hope this helps!", "Yes", "No", "是", "否", "Same", "Different",
          "相同", "不同", "#Rewritten Prompt#:", "#Given Prompt#", "Sorry", "抱歉", "[", "]", "{", "}", "\"",
          '{"instruction": "', '"output": "', "\n", "\n\n", " ", "：", ":", "word", "文字", "\t", "\r\n",
          "\u3000", "\u200b", "\x00", "\ufeff", "\ud800"]
REPLIES = st.text(max_size=60) | st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=30).map("".join)
PARENT = Record("Explain how a bicycle gear works.", "", "Gears trade force for speed.", lang="en")
MARKERS = ["#Rewritten Prompt#:", "#Created Prompt#:", "#改写后的指令#：", ""]


def check_parsed(parsed, kinds: tuple[type, ...]) -> None:
    for entry in parsed.entries:
        assert isinstance(entry, kinds + (Unparsed,)), entry
        if isinstance(entry, Unparsed):
            assert isinstance(entry.raw, str) and entry.why
        elif isinstance(entry, (Task, Instance)):
            assert all(isinstance(v, str) for v in (entry.input, entry.output))


@FUZZ
@given(REPLIES)
def test_generate_parsers_never_raise(reply):
    check_parsed(parse_instructions(reply), (str,))
    check_parsed(parse_tasks(reply), (Task,))
    check_parsed(parse_instances(reply), (Instance,))
    check_parsed(parse_instances(reply, output_first=True), (Instance,))
    assert parse_yes_no(reply) in (True, False, None)


@pytest.mark.parametrize("reply", ["[" * 5000, "```json\n" + "[" * 5000 + "]" * 5000 + "\n```", '{"tasks": ' + "[" * 5000])
def test_generate_parsers_survive_deeply_nested_json(reply):
    check_parsed(parse_instructions(reply), (str,))
    check_parsed(parse_instances(reply), (Instance,))
    tasks = parse_tasks(reply)
    # no task in it, and the reply is kept whole with the reason (it goes to rejected.jsonl), not dropped
    assert [type(e) for e in tasks.entries] == [Unparsed]
    assert tasks.entries[0].raw.strip() == reply.strip() and tasks.entries[0].why
    if reply.startswith("["):
        assert [type(e) for e in parse_instructions(reply).entries] == [Unparsed]


@pytest.mark.parametrize("reply", ["[" * 5000, "{" * 5000])
def test_augment_parsers_survive_deeply_nested_json(reply):
    rewrite = evol.parse_rewrite("deepen", reply, PARENT, MARKERS[0])
    assert rewrite is None or rewrite == (reply, "")  # kept as it came: never a fragment of it
    assert evol.parse_equal(reply) is None  # it says neither "same" nor "different"
    assert evol.answer_elimination(reply) == ("stopwords_only", {})  # an answer of brackets is no answer
    assert evol.copied_phrase(reply, PARENT.instruction) is None


@FUZZ
@given(REPLIES, st.sampled_from(list(evol.EVOL_OPS) + [evol.PARAPHRASE]), st.sampled_from(MARKERS))
def test_augment_parsers_never_raise(reply, op, marker):
    parsed = evol.parse_rewrite(op, reply, PARENT, marker)
    assert parsed is None or (isinstance(parsed[0], str) and isinstance(parsed[1], str) and parsed[0])
    assert evol.parse_equal(reply) in ("same", "different", None)
    copied = evol.copied_phrase(reply, PARENT.instruction)
    if copied is not None:  # a phrase of the rewriting prompts, which the reply holds and the parent does not
        assert copied in evol._phrases()
        assert evol._fold(copied) in evol._fold(reply) and evol._fold(copied) not in evol._fold(PARENT.instruction)
    assert evol.copied_phrase(reply, reply) is None  # a parent holding the whole reply explains every phrase
    verdict = evol.answer_elimination(reply)
    assert verdict is None or (isinstance(verdict[0], str) and isinstance(verdict[1], dict))


@FUZZ
@given(REPLIES, st.sampled_from(["en", "zh", None]))
def test_filter_rules_judge_any_parsed_text_without_raising(text, lang):
    config = FilterConfig(lang=lang)
    found = check_instruction(text, config)
    assert found is None or isinstance(found[0], str)
    found = check_instance(Record("Name a colour.", text, text[::-1], lang=lang), config)
    assert found is None or isinstance(found[0], str)
    assert isinstance(detect_lang(text), str)
