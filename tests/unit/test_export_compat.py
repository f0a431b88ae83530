"""Issue 16, export side: one instruction + input join in every format (stated in the card with how
LLaMA-Factory's alpaca join differs), license identifiers the Hub accepts, and the card's language
detected from the data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sftdata.cli import main
from sftdata.core import formats
from sftdata.core.errors import ConfigError
from sftdata.core.records import Record, write_jsonl
from sftdata.export.license import check_license, hub_licenses
from sftdata.export.stage import export
from sftdata.text.prompt import PROMPT_JOIN, join_prompt

EN_TOPICS = ["volcanoes", "bicycles", "jazz music", "tax returns", "sourdough bread", "chess openings",
             "solar panels", "honey bees", "railway history", "knitting", "black holes", "tide pools"]
ZH_TOPICS = ["长城", "熊猫", "茶叶", "京剧", "高铁", "春节", "书法", "围棋", "火锅", "丝绸", "长江", "筷子"]
RECORDS = [Record(f"Write a short note about {t} for a school newsletter.", "Keep it under fifty words."
                  if i % 2 else "", f"A note on {t}.") for i, t in enumerate(EN_TOPICS)]
RECORDS += [Record(f"请用三句话介绍{t}。", "语气要轻松。" if i % 2 else "", f"关于{t}的介绍。")
            for i, t in enumerate(ZH_TOPICS)]


def _card_header(out: Path) -> dict:
    text = (out / "README.md").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---\n")[1])


def _user_text(fmt: str, row: dict) -> str:
    if fmt == "sharegpt":
        return row["conversations"][0]["value"]
    if fmt == "messages":
        return [m for m in row["messages"] if m["role"] == "user"][0]["content"]
    if fmt == "chat-prompt-completion":
        return [m for m in row["prompt"] if m["role"] == "user"][0]["content"]
    return row["prompt"]


@pytest.mark.parametrize("fmt", [f for f in formats.names() if f != "alpaca"])
def test_every_joined_format_has_the_same_user_turn_as_finetune(fmt):
    rec = Record("Summarize the text.", "Cats sleep a lot.", "Cats nap.")
    row = formats.get(fmt).write(rec, "", False)
    assert _user_text(fmt, row) == join_prompt(rec.instruction, rec.input) == "Summarize the text.\n\nCats sleep a lot."
    assert formats.get(fmt).joins_prompt()
    assert not formats.get("alpaca").joins_prompt()
    # one function: the formats registry and fine-tuning's user turn are the same join
    assert formats.prompt_text is join_prompt and PROMPT_JOIN == "\n\n"


def test_card_states_the_join_and_llamafactorys_alpaca_join(tmp_path):
    export(RECORDS, tmp_path, ["alpaca", "messages", "prompt-completion"], split=[1, 0, 0])
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    layout = card.split("## Prompt layout", 1)[1].split("\n## ", 1)[0]
    assert "12 of 24 records have an input" in layout
    assert "`messages`, `prompt-completion` files" in layout and "a blank line (`\\n\\n`)" in " ".join(layout.split())
    assert "LLaMA-Factory with one newline (`instruction\\ninput`)" in " ".join(layout.split())
    assert "### Input:" in layout


def test_card_without_alpaca_says_nothing_about_trainer_joins(tmp_path):
    export(RECORDS, tmp_path, ["messages"], split=[1, 0, 0])
    layout = (tmp_path / "README.md").read_text(encoding="utf-8").split("## Prompt layout", 1)[1]
    assert "LLaMA-Factory" not in layout.split("\n## ", 1)[0]


@pytest.mark.parametrize("value", ["apache-2.0", "Apache-2.0", "cc-by-nc-sa-4.0", "mit", "llama2", "openrail++"])
def test_hub_license_identifiers_are_accepted(value):
    assert check_license(value) == value.lower()


@pytest.mark.parametrize("value, hint", [("notalicense", "unlicense"), ("apache2", "apache-2.0"),
                                         ("gplv3", "")])
def test_unknown_license_is_a_config_error_with_a_hint(value, hint):
    with pytest.raises(ConfigError) as info:
        check_license(value)
    assert info.value.option == "--license" and value in str(info.value) and "--license other" in str(info.value)
    assert hint in str(info.value)


def test_other_needs_a_name_and_a_name_needs_other():
    assert check_license("other", "my-data-license") == "other"
    for license, name in (("other", None), ("other", "Bad Name"), ("mit", "my-name"), (None, "my-name")):
        with pytest.raises(ConfigError) as info:
            check_license(license, name)
        assert info.value.option == "--license-name"
    assert {"apache-2.0", "other", "unknown", "cc-by-4.0"} <= hub_licenses()


def test_license_name_reaches_the_card_header(tmp_path):
    export(RECORDS, tmp_path, ["alpaca"], split=[1, 0, 0], license="other", license_name="my-data-license")
    header = _card_header(tmp_path)
    assert header["license"] == "other" and header["license_name"] == "my-data-license"


def test_cli_rejects_a_bad_license_with_exit_2(tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, RECORDS)
    with pytest.raises(SystemExit) as info:
        main(["export", str(data), "--out", str(tmp_path / "out"), "--license", "notalicense"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--license" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "README.md").exists()


def test_card_language_is_detected_from_records_without_one(tmp_path):
    assert all(r.lang is None for r in RECORDS)
    summary = export(RECORDS, tmp_path, ["alpaca"], split=[1, 0, 0])
    assert _card_header(tmp_path)["language"] == ["en", "zh"]
    assert summary["languages_detected"] == 24
    assert "24 of 24 records had none recorded" in (tmp_path / "README.md").read_text(encoding="utf-8")


def test_a_records_own_language_is_kept(tmp_path):
    records = [Record(r.instruction, r.input, r.output, lang="fr") for r in RECORDS[:12]]
    summary = export(records, tmp_path, ["alpaca"], split=[1, 0, 0])
    assert _card_header(tmp_path)["language"] == ["fr"] and summary["languages_detected"] == 0


def test_the_split_is_stratified_by_the_detected_language(tmp_path):
    """Records without a language split exactly as if each carried the language detected for it:
    before detection they were all one stratum, and a language could miss a split."""
    from test_export import make_records

    known = make_records(60, 3)
    unknown = [Record(r.instruction, r.input, r.output, is_classification=r.is_classification) for r in known]

    def splits(records, out):
        export(records, out, ["alpaca"], split=[0.8, 0.1, 0.1], seed=3)
        return {s: sorted(json.loads(line)["instruction"] + json.loads(line)["input"]
                          for line in (out / "alpaca" / f"{s}.jsonl").open(encoding="utf-8"))
                for s in ("train", "validation", "test")}

    assert splits(unknown, tmp_path / "detected") == splits(known, tmp_path / "recorded")
