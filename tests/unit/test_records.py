from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftdata.core.errors import DataError
from sftdata.core.records import Record, read_all, read_records, record_id, write_jsonl


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_id_is_stable_and_shared_by_duplicates() -> None:
    a = Record("Say hi", "", "hi")
    b = Record("Say hi", "", "hi", source="alpaca", lang="en")
    assert a.id == b.id == record_id("Say hi", "", "hi")
    assert a.id != Record("Say hi", "", "hello").id


@pytest.mark.parametrize(("content", "line", "message"), [
    ('{"instruction": "a", "output": "b"}\n{"instruction": \n', 2, "invalid JSON"),
    ('{"output": "b"}\n', 1, "missing field 'instruction'"),
    ('{"instruction": "a", "output": 3}\n', 1, "field 'output' must be a string"),
    ('{"instruction": ""}\n', 1, "empty"),
    ('[{"instruction": "a"}]\n', 1, "JSON array"),
    ('"just a string"\n', 1, "expected a JSON object"),
    ('{"instruction": "a", "is_classification": "maybe"}\n', 1, "is_classification"),
])
def test_bad_lines_name_file_and_line(tmp_path: Path, content: str, line: int, message: str) -> None:
    path = write(tmp_path / "bad.jsonl", content)
    with pytest.raises(DataError) as info:
        list(read_records(path))
    assert f"{path}:{line}:" in str(info.value)
    assert message in str(info.value)


def test_bom_and_invalid_utf8(tmp_path: Path) -> None:
    bom = write(tmp_path / "bom.jsonl", b'\xef\xbb\xbf{"instruction": "a"}\n')
    with pytest.raises(DataError, match=r"bom.jsonl:1: .*byte-order mark"):
        list(read_records(bom))
    bad = write(tmp_path / "latin1.jsonl", b'{"instruction": "a"}\n{"instruction": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"latin1.jsonl:2: invalid UTF-8"):
        list(read_records(bad))


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        list(read_records(write(tmp_path / "empty.jsonl", "\n\n")))
    with pytest.raises(DataError, match="no such file"):
        list(read_records(tmp_path / "nope.jsonl"))


def test_every_shape_is_read(tmp_path: Path) -> None:
    rows = [
        {"instruction": "Add", "input": "1 2", "output": "3"},
        {"id": "seed_task_0", "name": "n", "instruction": "Classify", "is_classification": True,
         "instances": [{"input": "good", "output": "Positive"}, {"input": "bad", "output": "Negative"}]},
        {"conversations": [{"from": "human", "value": "Translate\n\nhello"}, {"from": "gpt", "value": "hola"}],
         "system": "Be brief."},
        {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"},
                      {"role": "assistant", "content": "A"}]},
        {"prompt": "P\n\nextra", "completion": "C"},
    ]
    path = write(tmp_path / "mixed.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    records = list(read_records(path))
    assert [(r.instruction, r.input, r.output) for r in records] == [
        ("Add", "1 2", "3"), ("Classify", "good", "Positive"), ("Classify", "bad", "Negative"),
        ("Translate", "hello", "hola"), ("Q", "", "A"), ("P", "extra", "C")]
    assert records[1].is_classification is True and records[1].source == "seed"
    assert records[3].meta["system"] == "Be brief." and records[4].meta["system"] == "S"


def test_crlf_lines_are_read(tmp_path: Path) -> None:
    path = write(tmp_path / "crlf.jsonl", '{"instruction": "a", "output": "b"}\r\n{"instruction": "c"}\r\n')
    assert [r.instruction for r in read_records(path)] == ["a", "c"]


def test_write_roundtrip_and_read_all(tmp_path: Path) -> None:
    records = [Record("你好吗", "", "我很好", lang="zh", source="self-instruct", meta={"rouge_max": 0.2})]
    write_jsonl(tmp_path / "out.jsonl", records)
    text = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert "你好吗" in text  # no \u escapes
    back = read_all([tmp_path / "out.jsonl"])
    assert back[0].to_dict() == records[0].to_dict()
