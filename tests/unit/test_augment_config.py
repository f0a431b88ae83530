"""AugmentConfig: op names and groups, validation naming the option, keyword files; the YAML config path."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftdata.augment import GROUPS, OPS, AugmentConfig
from sftdata.core.config import build
from sftdata.core.errors import ConfigError, DataError


def test_ops_expand_groups_commas_and_short_rule_names() -> None:
    cfg = AugmentConfig(ops=["constraints,paraphrase", "template", "evol", "constraints"])
    assert cfg.resolved_ops() == ["constraints", "paraphrase", "rule:template", "deepen", "concretize",
                                  "reasoning", "complicate-input", "breadth"]
    assert AugmentConfig(ops=["all"]).resolved_ops() == list(OPS)
    assert AugmentConfig(ops=["rule"]).resolved_ops() == list(GROUPS["rule"])


@pytest.mark.parametrize("kwargs, option", [
    (dict(ops=["evolve"]), "--ops"),
    (dict(ops=[" , "]), "--ops"),
    (dict(rounds=0), "--rounds"),
    (dict(lang="fr"), "--lang"),
    (dict(limit=0), "--limit"),
    (dict(ops=["deepen", "breadth"], ops_per_record=3), "--ops-per-record"),
    (dict(rouge_threshold=0.0), "--rouge-threshold"),
    (dict(temperature=-1.0), "--temperature"),
    (dict(max_tokens=0), "--max-tokens"),
    (dict(min_words=10, max_words=5), "--max-words"),  # the filter names the bound that is below the other
    (dict(no_rule=["lenght"]), "--no-rule"),
    (dict(ops=["rule:keywords"]), "--ops"),
    (dict(ops=["deepen"], keywords=["x"]), "--keyword"),
    (dict(ops=["deepen"], keywords_file="k.txt"), "--keywords"),
])
def test_validation_names_the_option(kwargs: dict, option: str) -> None:
    with pytest.raises(ConfigError) as info:
        AugmentConfig(**kwargs).validate()
    assert info.value.option == option


def test_keyword_list_merges_words_and_file(tmp_path: Path) -> None:
    path = tmp_path / "kw.txt"
    path.write_text("\ufeff# domain words\nfinance\n\n金融\nAnswer in under 50 words.\nfinance\n", encoding="utf-8")
    cfg = AugmentConfig(ops=["rule:keywords"], keywords=["law", " "], keywords_file=str(path))
    cfg.validate()
    assert cfg.keyword_list() == ["law", "finance", "金融", "Answer in under 50 words."]


@pytest.mark.parametrize("content, message", [
    (b"# only a comment\n\n", "no keywords in file"),
    (b"caf\xe9\n", "invalid UTF-8"),
])
def test_bad_keyword_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "kw.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        AugmentConfig(ops=["rule:keywords"], keywords_file=str(path)).keyword_list()
    with pytest.raises(DataError, match="no such keywords file"):
        AugmentConfig(ops=["rule:keywords"], keywords_file=str(tmp_path / "none.txt")).keyword_list()


def test_a_yaml_section_builds_the_config() -> None:
    cfg = build(AugmentConfig, {"ops": "constraints", "rounds": 2, "rouge-threshold": 0.8, "keywords": "law",
                                "limit": None}, "augment")
    assert cfg.ops == ["constraints"] and cfg.rounds == 2 and cfg.rouge_threshold == 0.8 and cfg.keywords == ["law"]
    with pytest.raises(ConfigError, match="augment.round"):
        build(AugmentConfig, {"round": 2}, "augment")
