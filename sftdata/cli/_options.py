"""Options shared by several commands: the LLM options and the summary printer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from ..core.settings import click_options, fields, from_options
from ..llm.config import LLMConfig


def llm_options(func: Callable) -> Callable:
    """Add the LLM options (from LLMConfig's fields). Precedence: option > environment variable > default."""
    return click_options(LLMConfig)(func)


LLM_OPTION_NAMES = tuple(f.name for f in fields(LLMConfig) if f.metadata["cli"])


def pop_llm_config(kwargs: dict[str, Any], adapter: str | None = None) -> LLMConfig:
    """Take the LLM options out of a command's kwargs and resolve them into an LLMConfig."""
    values = {name: kwargs.pop(name) for name in LLM_OPTION_NAMES if name in kwargs}
    config = from_options(LLMConfig, values, adapter=adapter)
    config.validate()
    return config


def json_option(func: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")(func)


def print_summary(title: str, summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True))
        return
    click.echo(title)
    for key, value in summary.items():
        if isinstance(value, dict):
            click.echo(f"  {key}:")
            for sub_key, sub_value in value.items():
                click.echo(f"    {sub_key}: {_fmt(sub_value)}")
        else:
            click.echo(f"  {key}: {_fmt(value)}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

