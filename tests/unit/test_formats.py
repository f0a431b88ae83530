"""The formats registry (core/formats.py): a format registered in this test, and nowhere else, is
exported, read back by every reader, listed in dataset_info.json and the card, and found by the report;
an unknown format name is an error, never treated as another format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sftdata.cli import cli
from sftdata.core import formats
from sftdata.core.errors import ConfigError
from sftdata.core.records import Record, read_all, write_jsonl
from sftdata.export.stage import dataset_info_entry, export
from sftdata.report.stage import _run_data_files

RECORDS = [Record(f"Name a colour number {i}.", "in English" if i % 2 else "", f"Colour {i}.", lang="en")
           for i in range(20)]


def _qa_row(rec, system: str, with_system: bool) -> dict:
    return {"q": formats.prompt_text(rec.instruction, rec.input), "a": rec.output}


def _qa_read(obj: dict) -> list[dict]:
    instruction, input_text = formats.split_prompt(obj["q"])
    return [{"instruction": instruction, "input": input_text, "output": obj["a"]}]


@pytest.fixture
def qa_format():
    fmt = formats.register(formats.Format(
        "qa", _qa_row, matches=lambda obj: "q" in obj and "a" in obj, read=_qa_read,
        dataset_info={"formatting": "alpaca", "columns": {"prompt": "q", "response": "a"}},
        usage=(("axolotl", "type: qa"),)))
    yield fmt
    formats.unregister("qa")


def test_a_registered_format_is_exported_read_back_and_described(tmp_path: Path, qa_format) -> None:
    summary = export(RECORDS, tmp_path / "out", ["qa", "alpaca"], split=(0.8, 0.1, 0.1), name="toy")
    rows = [json.loads(line) for line in (tmp_path / "out" / "qa" / "train.jsonl").read_text().splitlines()]
    assert rows and set(rows[0]) == {"q", "a"} and summary["columns"]["qa"] == ["q", "a"]
    back = read_all(sorted((tmp_path / "out" / "qa").glob("*.jsonl")))
    assert sorted((r.instruction, r.input, r.output) for r in back) == \
        sorted((r.instruction, r.input, r.output) for r in RECORDS)
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert info["toy_qa_train"] == {"file_name": "qa/train.jsonl", "formatting": "alpaca",
                                    "columns": {"prompt": "q", "response": "a"}}
    card = (tmp_path / "out" / "README.md").read_text()
    assert "`qa` (type: qa)" in card and "| qa |" in card
    assert _run_data_files(tmp_path / "out")  # the report finds an export of it
    assert [p.parent.name for p in _run_data_files(tmp_path / "out")][0] in ("alpaca", "qa")


def test_the_command_line_knows_a_registered_format(tmp_path: Path, qa_format) -> None:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, RECORDS)
    result = CliRunner().invoke(cli, ["export", str(source), "--out", str(tmp_path / "o"), "--format", "qa"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "qa" / "train.jsonl").is_file()


def test_an_unknown_format_is_an_error_not_messages(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown format 'chatml'"):
        dataset_info_entry("chatml", "chatml/train.jsonl", False)
    with pytest.raises(ConfigError, match="--format"):
        export(RECORDS, tmp_path / "out", ["chatml"])
    assert not (tmp_path / "out").exists()


def test_builtin_formats_round_trip_and_keep_their_dataset_info() -> None:
    rec = Record("Translate.", "Bonjour", "Hello", meta={"system": "Be brief."})
    for name in ("alpaca", "sharegpt", "messages", "prompt-completion"):
        fmt = formats.get(name)
        row = fmt.write(rec, "Be brief.", True)
        from sftdata.core.records import records_from_obj

        (back,) = records_from_obj(row)
        assert (back.instruction, back.input, back.output) == ("Translate.", "Bonjour", "Hello"), name
        assert fmt.keeps_system() == (name != "prompt-completion")
    assert formats.get("messages").dataset_info_entry("m/train.jsonl", True)["tags"]["system_tag"] == "system"
    assert [f.name for f in formats.for_training()] == ["messages", "sharegpt", "alpaca", "prompt-completion",
                                                        "chat-prompt-completion"]


def test_prompt_completion_carries_trls_separator_and_reads_back_without_it() -> None:
    # TRL joins prompt + completion as one string: without a separator the reply is glued to the prompt
    from sftdata.core.records import records_from_obj

    row = formats.get("prompt-completion").write(Record("Name a colour.", "", "Blue."), "", False)
    assert row == {"prompt": "Name a colour.", "completion": "\nBlue."}
    (back,) = records_from_obj(row)
    assert back.output == "Blue."
    # a reply that starts with whitespace of its own keeps it and gets no second separator
    row = formats.get("prompt-completion").write(Record("Indent.", "", "  x = 1"), "", False)
    assert row["completion"] == "  x = 1"


def test_conversational_prompt_completion_has_role_content_lists_in_both_fields(tmp_path: Path) -> None:
    from sftdata.core.records import records_from_obj

    fmt = formats.get("chat-prompt-completion")
    row = fmt.write(Record("Translate.", "Bonjour", "Hello"), "Be brief.", True)
    assert row == {"prompt": [{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": "Translate.\n\nBonjour"}],
                   "completion": [{"role": "assistant", "content": "Hello"}]}
    (back,) = records_from_obj(row)
    assert (back.instruction, back.input, back.output, back.meta) == (
        "Translate.", "Bonjour", "Hello", {"system": "Be brief."})
    # LLaMA-Factory cannot read it: exported, but no dataset_info.json entry
    export(RECORDS, tmp_path / "o", ["chat-prompt-completion", "alpaca"])
    info = json.loads((tmp_path / "o" / "dataset_info.json").read_text())
    assert info and not any("chat_prompt_completion" in key for key in info)
    assert (tmp_path / "o" / "chat-prompt-completion" / "train.jsonl").is_file()
