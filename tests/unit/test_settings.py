"""Settings declared once (core.settings): the CLI options, the config keys, the hash and the listing all
come from the stage dataclasses' fields, so they cannot drift apart."""

from __future__ import annotations

import dataclasses

import click
import pytest
from click.testing import CliRunner

from sftdata import registry
from sftdata.cli import cli
from sftdata.core import settings
from sftdata.core.rounds import RESUMABLE_KEYS
from sftdata.core.settings import setting
from sftdata.llm.client import LLMConfig
from sftdata.pipeline import list_keys


@dataclasses.dataclass
class Toy:
    threshold: float = setting(0.7, help="A threshold.")
    names: list[str] = setting(list, help="Names.", metavar="NAME")
    ratios: list[float] = setting(lambda: [0.5, 0.5], help="Ratios.")
    workers: int = setting(4, hashed=False, help="Workers.")
    internal: int = setting(3, cli=False, config=False, help="Set by the library.")
    fast: bool = setting(True, flag="--fast/--slow", help="Speed.")


def _parse(*args: str) -> Toy:
    @click.command()
    @settings.click_options(Toy)
    def command(**options: object) -> None:
        click.echo(repr(settings.from_options(Toy, options)))

    result = CliRunner().invoke(command, list(args))
    assert result.exit_code == 0, result.output
    return eval(result.output.strip(), {"Toy": Toy})  # noqa: S307 - our own repr


def test_options_from_fields_split_commas_once_and_keep_defaults() -> None:
    toy = _parse("--names", "a,b", "--names", "c", "--slow")
    assert toy.names == ["a", "b", "c"] and toy.fast is False
    assert toy.threshold == 0.7 and toy.ratios == [0.5, 0.5] and toy.internal == 3
    assert _parse("--ratios", "0.2,0.8").ratios == [0.2, 0.8]
    assert _parse().fast is True


def test_hash_section_and_resumable_come_from_field_metadata() -> None:
    toy = Toy()
    assert settings.section(toy) == {"threshold": 0.7, "names": [], "ratios": [0.5, 0.5], "workers": 4, "fast": True}
    assert "workers" not in settings.hashed(toy) and "internal" not in settings.hashed(toy)
    assert settings.resumable(Toy) == {"workers"}
    llm = settings.hashed(LLMConfig(base_urls=["http://x/v1"], model="m", concurrency=3, api_key="sk-x"))
    assert llm == {"base_url": ["http://x/v1"], "model": "m", "price_in": None, "price_out": None, "cache": True,
                   "reasoning": "strip"}
    assert {"concurrency", "max_cost", "max_requests", "timeout", "batch_size"} <= RESUMABLE_KEYS


def test_list_keys_names_every_setting_of_every_stage_with_its_default() -> None:
    rows = {key: (default, text) for key, default, text in list_keys()}
    for spec in registry.specs():
        assert f"{spec.name}.enabled" in rows
        for field in settings.config_fields(spec.config):
            if "help" in field.metadata and not field.metadata["by_pipeline"]:
                assert f"{spec.name}.{settings.key_of(field)}" in rows
    assert rows["filter.rouge_threshold"][0] == "0.7"
    assert rows["llm.base_url"][1].startswith("OpenAI-compatible endpoint")
    assert "generate.seeds" not in rows and "finetune.data" not in rows  # set by the pipeline
    result = CliRunner().invoke(cli, ["run", "--list-keys"])
    assert result.exit_code == 0 and "export.formats" in result.output and "[default: 0.7]" in result.output


def test_top_level_help_lists_the_registry_stages_and_the_other_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in (*registry.names(), "run", "init", "llm"):
        assert f"\n    {name} " in result.output, name


@pytest.mark.parametrize("command", ["generate", "augment", "llm chat", "llm bench"])
def test_llm_options_come_from_llm_config(command: str) -> None:
    result = CliRunner().invoke(cli, [*command.split(), "--help"])
    for field in settings.fields(LLMConfig):
        if field.metadata["cli"]:
            assert settings.option_name(field) in result.output, field.name
