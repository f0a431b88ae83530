"""Export: field names per format, leak-free deterministic splits, dataset_info.json, the dataset card."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from sftdata.core.errors import ConfigError, DataError
from sftdata.core.records import Record, records_from_obj
from sftdata.export.card import size_category
from sftdata.export.license import check_license
from sftdata.export.stage import (
    SPLITS,
    assign_splits,
    dataset_info_entry,
    export,
    parse_formats,
    parse_split,
    read_inputs,
    to_row,
)


def topic(t: int, zh: bool) -> str:
    """Words of task ``t`` alone: without them the templated instructions are near duplicates of each
    other (ROUGE-L > 0.7), one split group, as assign_splits rightly treats them."""
    if zh:
        return "".join(chr(0x4E00 + 97 * (4 * t + j) % 20000) for j in range(4))
    return " ".join(f"w{t}{c}" for c in "abcd")


def make_records(n_tasks: int = 60, per_task: int = 3) -> list[Record]:
    """Tasks in two languages, some classification, several instances each."""
    records = []
    for t in range(n_tasks):
        lang = "zh" if t % 3 == 0 else "en"
        is_cls = t % 4 == 0
        for k in range(per_task):
            if lang == "zh":
                records.append(Record(f"任务{t}（{topic(t, True)}）：把句子分类。" if is_cls else
                                      f"任务{t}（{topic(t, True)}）：写一句话。", f"输入{k}",
                                      f"输出{t}-{k}。", lang=lang, is_classification=is_cls))
            else:
                records.append(Record(f"Task {t} ({topic(t, False)}): classify the sentence." if is_cls else
                                      f"Task {t} ({topic(t, False)}): write a line.",
                                      f"input {k}" if k else "", f"Output {t}-{k}.", lang=lang,
                                      is_classification=is_cls))
    return records


# ---------------------------------------------------------------- formats

def test_rows_have_the_trainers_field_names():
    rec = Record("Translate to French.", "Good morning", "Bonjour")
    assert to_row(rec, "alpaca", "", False) == {"instruction": "Translate to French.", "input": "Good morning",
                                                 "output": "Bonjour"}
    assert to_row(rec, "alpaca", "Be brief.", True)["system"] == "Be brief."
    assert to_row(rec, "sharegpt", "Be brief.", True) == {
        "conversations": [{"from": "human", "value": "Translate to French.\n\nGood morning"},
                          {"from": "gpt", "value": "Bonjour"}], "system": "Be brief."}
    assert to_row(rec, "messages", "Be brief.", True) == {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Translate to French.\n\nGood morning"},
        {"role": "assistant", "content": "Bonjour"}]}
    assert to_row(rec, "messages", "", True)["messages"][0]["role"] == "user"  # no empty system turn
    assert to_row(rec, "prompt-completion", "Be brief.", True) == {
        "prompt": "Translate to French.\n\nGood morning", "completion": "\nBonjour"}  # TRL's separator
    no_input = Record("Name a colour.", "", "Blue.")
    assert to_row(no_input, "sharegpt", "", False)["conversations"][0]["value"] == "Name a colour."
    assert to_row(no_input, "prompt-completion", "", False)["prompt"] == "Name a colour."


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "messages", "prompt-completion"])
def test_each_row_imports_back(fmt):
    for rec in (Record("Translate to French.", "Good morning", "Bonjour"), Record("写一句诗。", "", "床前明月光。")):
        for system in ("", "Be brief."):
            back = records_from_obj(to_row(rec, fmt, system, True))
            assert len(back) == 1
            assert (back[0].instruction, back[0].input, back[0].output) == (rec.instruction, rec.input, rec.output)
            expected_system = system if fmt != "prompt-completion" else ""
            assert back[0].meta.get("system", "") == expected_system


def test_parse_formats_and_split():
    assert parse_formats(["alpaca,messages", "alpaca", "prompt-completion"]) == ["alpaca", "messages",
                                                                                 "prompt-completion"]
    assert parse_split("0.8, 0.1, 0.1") == (0.8, 0.1, 0.1)
    assert parse_split("1,0,0") == (1.0, 0.0, 0.0)
    assert parse_split([0.9, 0.1, 0.0]) == (0.9, 0.1, 0.0)


@pytest.mark.parametrize("value", ["0.9,0.1", "0.5,0.5,0.5", "a,b,c", "-0.1,0.6,0.5", "0,0.5,0.5", "nan,0,1", ""])
def test_bad_split_names_the_option(value):
    with pytest.raises(ConfigError) as info:
        parse_split(value)
    assert info.value.option == "--split"


def test_bad_format_names_the_option():
    with pytest.raises(ConfigError) as info:
        parse_formats(["alpaca", "jsonl"])
    assert info.value.option == "--format" and "jsonl" in str(info.value)


def test_license_identifiers():
    assert check_license(None) == "unknown"
    assert check_license("Apache-2.0") == "apache-2.0"
    with pytest.raises(ConfigError) as info:
        check_license("my license!")
    assert info.value.option == "--license"


def test_size_categories():
    assert [size_category(n) for n in (1, 999, 1000, 50_000, 2_000_000)] == \
        ["n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]


# ---------------------------------------------------------------- splits

def _by_split(records, names):
    return {s: [r for r, n in zip(records, names) if n == s] for s in SPLITS}


def test_no_instruction_in_two_splits_and_ratios_hold():
    records = make_records(200, 3)
    names = assign_splits(records, (0.8, 0.1, 0.1), seed=0)
    owner: dict[str, set[str]] = {}
    for rec, name in zip(records, names):
        owner.setdefault(rec.instruction, set()).add(name)
    assert all(len(v) == 1 for v in owner.values())
    counts = Counter(names)
    assert abs(counts["train"] - 480) <= 3 and abs(counts["validation"] - 60) <= 3 and abs(counts["test"] - 60) <= 3


def test_grouping_ignores_case_and_spacing():
    records = [Record("Name a colour.", "", "Blue."), Record("name  a COLOUR.", "", "Red.")] + make_records(30, 1)
    for seed in range(10):
        names = assign_splits(records, (0.5, 0.25, 0.25), seed)
        assert names[0] == names[1]


def test_grouping_case_and_spacing_do_not_reshuffle_the_splits():
    # near-duplicate linking (lowercased ROUGE) already joins case variants, so the group key's own
    # casefold shows in the seeded order: re-casing or re-spacing instructions must not move records
    records = make_records(60, 1)
    recased = [dataclasses.replace(r, instruction=r.instruction.upper().replace(" ", "  ")) for r in records]
    assert assign_splits(records, (0.5, 0.25, 0.25), 7) == assign_splits(recased, (0.5, 0.25, 0.25), 7)


def test_splits_are_stratified():
    records = make_records(240, 1)
    names = assign_splits(records, (0.5, 0.25, 0.25), seed=3)
    for stratum in {(r.lang, r.is_classification) for r in records}:
        members = [n for r, n in zip(records, names) if (r.lang, r.is_classification) == stratum]
        share = Counter(members)["test"] / len(members)
        assert 0.15 <= share <= 0.35, (stratum, share)


@pytest.mark.parametrize("n_tasks, per_task, ratios", [(240, 1, (0.5, 0.25, 0.25)), (120, 2, (0.8, 0.1, 0.1)),
                                                        (97, 2, (0.7, 0.2, 0.1)), (53, 1, (0.6, 0.3, 0.1))])
def test_every_stratum_is_within_one_group_of_the_ratios(n_tasks, per_task, ratios):
    """What the docstring promises, per (lang, is_classification) stratum and split, for many seeds: a
    split that ignored the strata lands several records off in some stratum."""
    records = make_records(n_tasks, per_task)
    for seed in range(12):
        names = assign_splits(records, ratios, seed)
        strata: dict[tuple, list[str]] = {}
        for rec, name in zip(records, names):
            strata.setdefault((rec.lang, rec.is_classification), []).append(name)
        for stratum, members in strata.items():
            counts = Counter(members)
            for split, ratio in zip(SPLITS, ratios):
                assert abs(counts[split] - ratio * len(members)) <= per_task, (seed, stratum, split, counts)


def test_a_group_split_between_strata_lands_the_same_whatever_the_input_order():
    """A group whose records vote for two strata equally (one labelled classification, one not) must
    get the same stratum, and so the same split, when the input comes in another order."""
    records = []
    for rec in make_records(61, 1):  # 61: stratum sizes that the ratios' period (10 groups) does not divide
        records += [rec, Record(rec.instruction, "other input", "other output", lang=rec.lang,
                                is_classification=not rec.is_classification)]
    for seed in range(6):
        names = assign_splits(records, (0.7, 0.2, 0.1), seed)
        assert assign_splits(list(reversed(records)), (0.7, 0.2, 0.1), seed) == list(reversed(names))


@pytest.mark.parametrize("hash_seeds", [("1", "2"), ("0", "4242")])
def test_splits_are_the_same_in_every_process(hash_seeds):
    """Python salts str hashes per process: an order taken from hash() would move records between
    splits from one run to the next. Two processes with different PYTHONHASHSEED must agree."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from test_export import make_records; "
            "from sftdata.export.stage import assign_splits; "
            "print(json.dumps(assign_splits(make_records(80, 2), (0.6, 0.2, 0.2), seed=5)))")
    results = []
    for hash_seed in hash_seeds:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], env=env,
                             capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out))
    assert results[0] == results[1] == assign_splits(make_records(80, 2), (0.6, 0.2, 0.2), seed=5)


def test_same_seed_same_split_other_seed_different():
    records = make_records(100, 2)
    first = assign_splits(records, (0.8, 0.1, 0.1), seed=7)
    assert assign_splits(records, (0.8, 0.1, 0.1), seed=7) == first
    assert assign_splits(list(reversed(records)), (0.8, 0.1, 0.1), seed=7) == list(reversed(first))
    assert assign_splits(records, (0.8, 0.1, 0.1), seed=8) != first


def test_zero_ratio_split_gets_nothing():
    names = assign_splits(make_records(50, 2), (0.9, 0.1, 0.0), seed=0)
    assert "test" not in names and "validation" in names


# ---------------------------------------------------------------- dataset_info.json

def test_dataset_info_entries_follow_llama_factory():
    assert dataset_info_entry("alpaca", "alpaca/train.jsonl", False) == {
        "file_name": "alpaca/train.jsonl", "formatting": "alpaca",
        "columns": {"prompt": "instruction", "query": "input", "response": "output"}}
    assert dataset_info_entry("alpaca", "a", True)["columns"]["system"] == "system"
    sharegpt = dataset_info_entry("sharegpt", "s", True)
    assert sharegpt["formatting"] == "sharegpt"
    assert sharegpt["columns"] == {"messages": "conversations", "system": "system"}
    assert sharegpt["tags"] == {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                                "assistant_tag": "gpt", "system_tag": "system"}
    messages = dataset_info_entry("messages", "m", True)
    assert messages["columns"] == {"messages": "messages"}
    assert messages["tags"] == {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                "assistant_tag": "assistant", "system_tag": "system"}
    assert dataset_info_entry("prompt-completion", "p", True) == {
        "file_name": "p", "formatting": "alpaca", "columns": {"prompt": "prompt", "response": "completion"}}


# ---------------------------------------------------------------- the whole export

def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_writes_files_info_and_card(tmp_path):
    records = make_records(40, 2)
    records[0].meta["system"] = "Answer in one line."
    summary = export(records, tmp_path / "ds", ["alpaca", "messages"], split=(0.8, 0.2, 0.0), seed=1,
                     system="You are helpful.", license="cc-by-4.0", name="demo")
    out = tmp_path / "ds"
    assert summary["omitted_splits"] == ["test"]
    assert sorted(p.name for p in (out / "alpaca").iterdir()) == ["train.jsonl", "validation.jsonl"]
    train = _read_jsonl(out / "alpaca" / "train.jsonl") + _read_jsonl(out / "alpaca" / "validation.jsonl")
    assert len(train) == 80 and all(set(r) == {"instruction", "input", "output", "system"} for r in train)
    systems = Counter(r["system"] for r in train)
    assert systems == {"You are helpful.": 79, "Answer in one line.": 1}  # the record's own system wins

    info = json.loads((out / "dataset_info.json").read_text())
    assert set(info) == {"demo_alpaca_train", "demo_alpaca_validation", "demo_messages_train",
                         "demo_messages_validation"}
    assert info["demo_messages_train"]["file_name"] == "messages/train.jsonl"

    card = (out / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["license"] == "cc-by-4.0" and header["task_categories"] == ["text-generation"]
    assert header["language"] == ["en", "zh"] and header["size_categories"] == ["n<1K"]
    assert header["configs"][0] == {"config_name": "alpaca", "default": True, "data_files": [
        {"split": "train", "path": "alpaca/train.jsonl"}, {"split": "validation", "path": "alpaca/validation.jsonl"}]}
    assert "| instances | 80 |" in card and "## Examples" in card and "\"instruction\":" in card
    assert "Not written (no records): test." in card


def test_export_removes_stale_files_and_keeps_other_datasets(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "dataset_info.json").write_text(json.dumps({"other": {"file_name": "other.json"}}))
    records = make_records(30, 1)
    export(records, out, ["alpaca"], split=(0.8, 0.1, 0.1), name="demo")
    assert (out / "alpaca" / "test.jsonl").exists()
    export(records, out, ["alpaca"], split=(0.9, 0.1, 0.0), name="demo")
    assert not (out / "alpaca" / "test.jsonl").exists()
    info = json.loads((out / "dataset_info.json").read_text())
    assert set(info) == {"other", "demo_alpaca_train", "demo_alpaca_validation"}


def test_card_reports_the_run_directory(tmp_path):
    run = tmp_path / "runs" / "demo"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({
        "generate": {"model": "SmolLM2-135M-Instruct", "prompts": ["self_instruct/en"], "seeds": "seeds/en.jsonl"},
        "filter": {"rouge_l_max": 0.7, "min_words": 3}, "api_key": "sk-secret-should-not-appear"}))
    (run / "stats.json").write_text(json.dumps({"seed_tasks": 12, "requests": 340, "accepted": 60}))
    rows = [{"record": {}, "stage": "filter", "reason": "rouge"}] * 5 + [{"record": {}, "stage": "clean",
                                                                          "reason": "refusal"}] * 2
    (run / "rejected.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    source = run / "accepted.jsonl"
    source.write_text("".join(r.to_json() + "\n" for r in make_records(20, 1)))
    export(read_inputs([source]), tmp_path / "out", ["alpaca"], sources=[source])
    card = (tmp_path / "out" / "README.md").read_text()
    assert "**model**: SmolLM2-135M-Instruct" in card
    assert "**seed tasks**: 12" in card and "rouge_l_max" in card and "self_instruct/en" in card
    assert "| filter | rouge | 5 |" in card and "| clean | refusal | 2 |" in card and "unreadable line" in card
    assert "sk-secret" not in card


def test_card_covers_every_stage_of_a_staged_run(tmp_path):
    run = tmp_path / "runs" / "demo"
    for stage in ("generate", "filter", "clean"):
        (run / stage).mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"generate": {"model": "gpt-test", "prompts": "en"},
                                                 "filter": {"rouge_l_max": 0.7}}))
    (run / "generate" / "stats.json").write_text(json.dumps({"seed_tasks": 8, "requests": 99}))
    (run / "generate" / "rejected.jsonl").write_text(json.dumps({"stage": "generate", "reason": "parse"}) + "\n")
    (run / "filter" / "rejected.jsonl").write_text(json.dumps({"stage": "filter", "reason": "rouge"}) + "\n" * 1)
    (run / "clean" / "stats.json").write_text(json.dumps({"stage": "clean", "kept": 20}))
    (run / "clean" / "config.json").write_text(json.dumps({"rules": ["refusal", "repetition"]}))
    source = run / "clean" / "accepted.jsonl"
    source.write_text("".join(r.to_json() + "\n" for r in make_records(20, 1)))
    export(read_inputs([source]), tmp_path / "out", ["alpaca"], sources=[source])
    card = (tmp_path / "out" / "README.md").read_text()
    assert "### Run `demo`" in card and "**model**: gpt-test" in card and "**seed tasks**: 8" in card
    assert "| generate | parse | 1 |" in card and "| filter | rouge | 1 |" in card
    assert "| generate | requests | 99 |" in card and "| clean | kept | 20 |" in card
    assert "**clean rules**: [\"refusal\", \"repetition\"]" in card and "clean/config.json" in card


def test_card_without_run_directory(tmp_path):
    source = tmp_path / "data.jsonl"
    source.write_text("".join(r.to_json() + "\n" for r in make_records(5, 1)))
    export(read_inputs([source]), tmp_path / "out", ["sharegpt"], sources=[source])
    assert "not in an sftdata run directory" in (tmp_path / "out" / "README.md").read_text()


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("line, message", [
    ('{"input": "x", "output": "y"}', "missing field 'instruction'"),
    ('{"instruction": "x", "output": 3}', "field 'output' must be a string"),
    ('{"instruction": "x", "output": ""}', "field 'output' is empty"),
    ('{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": null}]}', "string 'value'"),
])
def test_bad_records_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "in.jsonl"
    path.write_text('{"instruction": "ok", "output": "fine"}\n' + line + "\n")
    with pytest.raises(DataError) as info:
        read_inputs([path])
    assert f"{path}:2:" in str(info.value) and message in str(info.value)


def test_export_refuses_incomplete_records(tmp_path):
    with pytest.raises(DataError):
        export([Record("x", "", "")], tmp_path / "out")
    with pytest.raises(ConfigError):
        export([], tmp_path / "out")


def test_relatives_never_straddle_splits():
    """The demo's leak: a paraphrase (parent_id -> its parent) in test, its parent in train, one output.
    Lineage chains, near-duplicate instructions and equal outputs all join a record's group."""
    records = make_records(60, 1)
    root = Record("Explain why the sky is blue to a child.", "", "Sunlight scatters off the air; blue scatters most.")
    para = Record("Tell a kid the reason the sky looks blue.", "", root.output, parent_id=root.id)
    grandchild = Record("Using one simile, explain the blue sky to a five-year-old.", "", "Like a prism...",
                        parent_id=para.id)
    orphan = Record("Explain to a young child why daytime sky is blue.", "", "Air bends blue light around.",
                    parent_id="gone-parent")
    orphan_sibling = Record("Describe a sunset for a blind reader.", "", "Warm colours sink.",
                            parent_id="gone-parent")
    near = Record("Explain why the sky is blue to a small child.", "", "Because of Rayleigh scattering.")
    relatives = [root, para, grandchild, orphan, orphan_sibling, near]
    records += relatives
    info: dict = {}
    for seed in range(12):
        names = assign_splits(records, (0.6, 0.2, 0.2), seed, info=info)
        groups = {names[len(records) - 6 + i] for i in (0, 1, 2, 5)}
        assert len(groups) == 1, (seed, groups)
        assert names[-3] == names[-2], seed
    assert info["links"]["lineage"] >= 3 and info["links"]["near_duplicate"] >= 1
    assert info["groups"] == 60 + 2  # 60 tasks; the sky family (root, para, grandchild, near), the orphans
