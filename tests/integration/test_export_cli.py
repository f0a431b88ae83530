"""``sftdata export`` end to end: files load with ``datasets``, round trips, splits, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli

from sftdata.cli import main
from sftdata.core.records import Record, read_records

FORMATS = ["alpaca", "sharegpt", "messages", "prompt-completion"]
COLUMNS = {"alpaca": ["instruction", "input", "output", "system"], "sharegpt": ["conversations", "system"],
           "messages": ["messages"], "prompt-completion": ["prompt", "completion"]}
SPLITS = ["train", "validation", "test"]


def topic(t: int, zh: bool) -> str:
    """Words of task ``t`` alone: without them the templated instructions are near duplicates of each
    other (ROUGE-L > 0.7), one split group, as export rightly treats them."""
    if zh:
        return "".join(chr(0x4E00 + 97 * (4 * t + j) % 20000) for j in range(4))
    return " ".join(f"w{t}{c}" for c in "abcd")


def make_input(path: Path) -> list[Record]:
    """60 tasks, 2 instances each, English and Chinese, some classification, some with a system prompt."""
    records = []
    for t in range(60):
        zh, cls = t % 3 == 0, t % 4 == 0
        for k in range(2):
            meta = {"system": "请简短回答。" if zh else "Answer briefly."} if t % 5 == 0 else {}
            if zh:
                records.append(Record(f"任务{t}{topic(t, True)}：判断情感。" if cls else f"任务{t}{topic(t, True)}：续写句子。", f"句子{k}" if k else "",
                                      f"积极{t}-{k}" if cls else f"今天天气很好{t}-{k}。", lang="zh",
                                      is_classification=cls, meta=meta))
            else:
                records.append(Record(f"Task {t} {topic(t, False)}: judge the sentiment." if cls else
                                      f"Task {t} {topic(t, False)}: continue the line.",
                                      f"line {k}" if k else "", f"Positive {t}-{k}" if cls else f"The sky is blue {t}-{k}.",
                                      lang="en", is_classification=cls, meta=meta))
    path.write_text("".join(r.to_json() + "\n" for r in records), encoding="utf-8")
    return records




def key(rec: Record, with_system: bool = True) -> tuple:
    return (rec.instruction, rec.input, rec.output, rec.meta.get("system", "") if with_system else "")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    source = root / "in.jsonl"
    records = make_input(source)
    out = root / "out"
    main_args = ["export", str(source), "--out", str(out), "--format", "alpaca", "--format",
                 "sharegpt,messages,prompt-completion", "--split", "0.8,0.1,0.1", "--seed", "3", "--hf", "--json"]
    try:
        main(main_args)
    except SystemExit as exc:  # pragma: no cover - a failure here shows in every test
        raise AssertionError(f"export exited {exc.code}") from None
    info = json.loads((out / "dataset_info.json").read_text())
    return root, source, out, records, info


def test_every_file_loads_with_datasets(exported, tmp_path):
    from datasets import load_dataset

    _root, _source, out, records, _info = exported
    total = {fmt: 0 for fmt in FORMATS}
    for fmt in FORMATS:
        for split in SPLITS:
            path = out / fmt / f"{split}.jsonl"
            lines = path.read_text(encoding="utf-8").splitlines()
            dataset = load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
            assert dataset.column_names == COLUMNS[fmt]
            assert dataset.num_rows == len(lines) > 0
            total[fmt] += dataset.num_rows
    assert set(total.values()) == {len(records)}
    messages = load_dataset("json", data_files=str(out / "messages" / "train.jsonl"), split="train",
                            cache_dir=str(tmp_path / "hf"))
    roles = {tuple(turn["role"] for turn in row["messages"]) for row in messages}
    assert roles <= {("user", "assistant"), ("system", "user", "assistant")}


def test_dataset_dict_reloads_from_disk_and_parquet(exported, tmp_path):
    from datasets import load_dataset, load_from_disk

    _root, _source, out, _records, _info = exported
    for fmt in FORMATS:
        reloaded = load_from_disk(str(out / "hf" / fmt))
        assert list(reloaded) == SPLITS
        for split in SPLITS:
            rows = (out / fmt / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
            assert reloaded[split].num_rows == len(rows)
            assert reloaded[split].column_names == COLUMNS[fmt]
            assert reloaded[split][0] == json.loads(rows[0])
            parquet = load_dataset("parquet", data_files=str(out / "parquet" / fmt / f"{split}.parquet"),
                                   split="train", cache_dir=str(tmp_path / "hf"))
            assert parquet.num_rows == len(rows)


def test_round_trip_each_format(exported):
    _root, _source, out, records, _info = exported
    for fmt in FORMATS:
        back = [rec for split in SPLITS for rec in read_records(out / fmt / f"{split}.jsonl")]
        with_system = fmt != "prompt-completion"  # the one format without a system field
        assert sorted(key(r, with_system) for r in back) == sorted(key(r, with_system) for r in records)


def test_export_reads_each_exported_shape(exported, capsys):
    root, _source, out, records, _info = exported
    for fmt in FORMATS:
        files = [str(out / fmt / f"{split}.jsonl") for split in SPLITS]
        again = root / f"again-{fmt}"
        code, _out, err = run_cli(["export", *files, "--out", str(again), "--split", "1,0,0"], capsys)
        assert code == 0, err
        rows = [json.loads(line) for line in (again / "alpaca" / "train.jsonl").read_text().splitlines()]
        with_system = fmt != "prompt-completion"
        got = sorted((r["instruction"], r["input"], r["output"], r.get("system", "") if with_system else "")
                     for r in rows)
        assert got == sorted(key(r, with_system) for r in records)
        assert not (again / "alpaca" / "validation.jsonl").exists()


def test_no_instruction_in_two_splits(exported):
    _root, _source, out, _records, _info = exported
    seen: dict[str, str] = {}
    for split in SPLITS:
        for rec in read_records(out / "alpaca" / f"{split}.jsonl"):
            assert seen.setdefault(rec.instruction, split) == split


def test_dataset_info_and_card(exported):
    _root, _source, out, _records, info = exported
    assert len(info) == len(FORMATS) * len(SPLITS)
    for entry in info.values():
        assert (out / entry["file_name"]).exists()
    assert info["out_alpaca_train"]["columns"]["system"] == "system"
    card = (out / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "config_name: prompt-completion" in card
    assert "language:\n- en\n- zh" in card and "| instances | 120 |" in card


def test_same_seed_same_files_other_seed_different(exported, capsys):
    root, source, out, _records, _info = exported

    def split_files(seed: int, name: str) -> list[str]:
        target = root / name
        code, _out, err = run_cli(["export", str(source), "--out", str(target), "--split", "0.8,0.1,0.1",
                                   "--seed", str(seed)], capsys)
        assert code == 0, err
        return [(target / "alpaca" / f"{s}.jsonl").read_text(encoding="utf-8") for s in SPLITS]

    first = split_files(3, "seed3")
    assert split_files(3, "seed3-again") == first
    assert first == [(out / "alpaca" / f"{s}.jsonl").read_text(encoding="utf-8") for s in SPLITS]
    assert split_files(4, "seed4") != first


def test_json_summary(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    make_input(source)
    code, stdout, _err = run_cli(["export", str(source), "--out", str(tmp_path / "o"), "--format", "messages",
                                  "--split", "0.9,0.1,0", "--json"], capsys)
    summary = json.loads(stdout)
    assert code == 0 and summary["splits"]["test"] == 0 and summary["omitted_splits"] == ["test"]
    assert summary["splits"]["train"] + summary["splits"]["validation"] == 120


@pytest.mark.parametrize("line, message", [
    ('{"input": "x", "output": "y"}', "missing field 'instruction'"),
    ('{"instruction": "x", "output": ["y"]}', "field 'output' must be a string"),
])
def test_bad_input_names_file_line_exit_2(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "fine", "output": "ok"}\n\n' + line + "\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", "from sftdata.cli import main; main()", "export", str(path),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"{path}:3: {message}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "alpaca").exists()  # nothing written on bad input


@pytest.mark.parametrize("args, option", [
    (["--split", "0.9,0.2,0.1"], "--split"), (["--format", "csv"], "--format"), (["--license", "a b"], "--license"),
])
def test_bad_options_exit_2(tmp_path, capsys, args, option):
    source = tmp_path / "in.jsonl"
    make_input(source)
    code, _out, err = run_cli(["export", str(source), "--out", str(tmp_path / "o"), *args], capsys)
    assert code == 2 and f"error: {option}:" in err
