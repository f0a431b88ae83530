"""Paths in a `sftdata run` config (seeds, judge.gold, select.feedback, a local llm.model, ...) are read
from the config file's directory, whatever the current directory; ``--set`` ones from the current
directory; a missing one stops the load with the config file and the key named (exit 2)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from cli_helpers import run_cli

from sftdata import registry
from sftdata.core import settings
from sftdata.core.errors import ConfigError
from sftdata.llm.client import LLMConfig
from sftdata.pipeline import load_pipeline

RECORD = '{"instruction": "Name a colour.", "output": "Blue.", "lang": "en"}\n'


def make_project(root: Path, **extra) -> Path:
    """A project directory holding a config and every file its path settings name (all relative)."""
    root.mkdir()
    for name in ("seeds.jsonl", "gold.jsonl", "feedback.jsonl", "held_out.jsonl"):
        (root / name).write_text(RECORD, encoding="utf-8")
    (root / "keywords.txt").write_text("budget\n", encoding="utf-8")
    (root / "model").mkdir()
    config = {"name": "p", "lang": "en", "seeds": "seeds.jsonl", "llm": {"model": "model"},
              "augment": {"ops": ["rule:keywords"], "keywords_file": "keywords.txt"}, "judge": {"gold": "gold.jsonl"},
              "select": {"feedback": ["feedback.jsonl"]}, "finetune": {"base_model": "model"},
              "export_model": {"eval_data": ["held_out.jsonl"], "base_model": "./model"}, **extra}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_paths_are_read_from_the_config_files_directory(tmp_path: Path, monkeypatch) -> None:
    config = make_project(tmp_path / "project")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "gold.jsonl").write_text(RECORD)  # a same-named file here must not be taken
    pipeline = load_pipeline(config)
    project = tmp_path / "project"
    stages = pipeline.stages
    assert pipeline.seeds == [str(project / "seeds.jsonl")]
    assert pipeline.llm.model == str(project / "model")
    assert stages["augment"].keywords_file == str(project / "keywords.txt")
    assert stages["judge"].gold == str(project / "gold.jsonl")
    assert stages["select"].feedback == [str(project / "feedback.jsonl")]
    assert stages["finetune"].base_model == str(project / "model")
    assert stages["export_model"].eval_data == [str(project / "held_out.jsonl")]
    assert stages["export_model"].base_model == str(project / "model")


def test_set_and_environment_paths_are_read_from_the_current_directory(tmp_path: Path, monkeypatch) -> None:
    config = make_project(tmp_path / "project")
    here = tmp_path / "here"
    here.mkdir()
    (here / "other_gold.jsonl").write_text(RECORD)
    (here / "env_model").mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("SFTDATA_MODEL", "env_model")
    pipeline = load_pipeline(config, ["judge.gold=other_gold.jsonl"])
    assert Path(pipeline.stages["judge"].gold).resolve() == here / "other_gold.jsonl"
    assert Path(pipeline.llm.model).resolve() == here / "env_model"
    assert pipeline.stages["select"].feedback == [str(tmp_path / "project" / "feedback.jsonl")]


def test_a_served_model_name_is_not_a_path(tmp_path: Path, monkeypatch) -> None:
    config = make_project(tmp_path / "project", llm={"base_url": ["http://127.0.0.1:9/v1"], "model": "model"})
    monkeypatch.chdir(tmp_path)
    assert load_pipeline(config).llm.model == "model"
    # no endpoint yet (the examples expect OPENAI_BASE_URL): a name that is no directory stays a name, so
    # --dry-run works; running it, the local backend says to set --base-url
    config = make_project(tmp_path / "other", llm={"model": "gpt-4o-mini"})
    assert load_pipeline(config).llm.model == "gpt-4o-mini"


@pytest.mark.parametrize("key", ["judge.gold", "select.feedback", "augment.keywords_file", "seeds",
                                 "finetune.base_model", "export_model.eval_data"])
def test_a_missing_path_names_the_config_file_and_the_key(tmp_path: Path, monkeypatch, capsys, key: str) -> None:
    config = make_project(tmp_path / "project")
    value = ["nowhere.jsonl"] if key in ("select.feedback", "export_model.eval_data") else "nowhere.jsonl"
    data = yaml.safe_load(config.read_text())
    section, _, name = key.rpartition(".")
    (data[section] if section else data)[name] = value
    config.write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_pipeline(config)
    message = str(info.value)
    assert message.startswith(f"{key}: no such file or directory") and str(config) in message
    assert str(tmp_path / "project" / "nowhere.jsonl") in message
    code, out, err = run_cli(["run", str(config), "--dry-run"], capsys)
    assert code == 2 and key in err and str(config) in err and "Traceback" not in err


def test_every_file_or_directory_setting_is_marked_as_a_path() -> None:
    """A setting whose option takes a FILE or DIR must say path=True, or a config would read it from the
    current directory again."""
    classes = [LLMConfig] + [spec.config for spec in registry.specs()]
    unmarked = []
    for cls in classes:
        for f in dataclasses.fields(cls):
            meta = f.metadata
            takes_path = meta.get("metavar") in ("FILE", "DIR") or (
                isinstance(meta.get("click_type"), tuple) and meta["click_type"][0] == "path")
            if takes_path and not meta.get("path"):
                unmarked.append(f"{cls.__name__}.{f.name}")
    assert unmarked == []
    marked = {f.name for cls in classes for f in dataclasses.fields(cls) if f.metadata.get("path")}
    assert {"gold", "feedback", "keywords_file", "base_model", "eval_data", "model"} <= marked
    assert settings.path_fields(LLMConfig(base_urls=["http://h/v1"], model="m")) == []
