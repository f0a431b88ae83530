"""Options shared by several commands: the LLM options and the summary printer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from ..llm.client import LLMConfig


def llm_options(func: Callable) -> Callable:
    """Add the LLM options. Precedence: option > environment variable > config file > default."""
    options = [
        click.option("--base-url", "base_urls", multiple=True, envvar="OPENAI_BASE_URL",
                     help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM), "
                          "https://api.openai.com/v1. Repeat to spread requests over replicas. "
                          "None: the embedded local model. [env: OPENAI_BASE_URL]"),
        click.option("--model", envvar="SFTDATA_MODEL",
                     help="Model name at the endpoint, or a local HF model directory. "
                          "Default: the embedded SmolLM2-135M-Instruct. [env: SFTDATA_MODEL]"),
        click.option("--api-key", envvar="OPENAI_API_KEY",
                     help="API key. Never written to the run directory, logs or cache. [env: OPENAI_API_KEY]"),
        click.option("--concurrency", type=int, default=16, show_default=True,
                     help="Requests in flight at once."),
        click.option("--timeout", type=float, default=120.0, show_default=True,
                     help="Seconds one attempt may take, reply body included, before it is abandoned and retried."),
        click.option("--max-attempts", type=int, default=6, show_default=True,
                     help="Attempts per request (429, 5xx, timeouts, resets, malformed replies are retried)."),
        click.option("--retry-base", type=float, default=0.5, show_default=True,
                     help="First backoff delay in seconds; doubles per attempt, with jitter. "
                          "Retry-After from the server wins."),
        click.option("--price-in", type=float, help="USD per million prompt tokens (for the cost estimate)."),
        click.option("--price-out", type=float, help="USD per million completion tokens."),
        click.option("--max-cost", type=float, help="Stop cleanly before spending more than this (USD)."),
        click.option("--max-requests", type=int, help="Stop cleanly after this many requests sent."),
        click.option("--no-cache", is_flag=True, help="Do not read or write the response cache."),
        click.option("--batch-size", type=int, default=32, show_default=True,
                     help="Local model: prompts generated together in one batch."),
        click.option("--max-reply-bytes", type=int, default=4 * 1024 * 1024, show_default=True,
                     help="Longest reply body read from the endpoint; a longer one is a failed attempt "
                          "(retried), never read whole."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


LLM_OPTION_NAMES = ("base_urls", "model", "api_key", "concurrency", "timeout", "max_attempts", "retry_base",
                    "price_in", "price_out", "max_cost", "max_requests", "no_cache", "batch_size",
                    "max_reply_bytes")


def pop_llm_config(kwargs: dict[str, Any], adapter: str | None = None) -> LLMConfig:
    """Take the LLM options out of a command's kwargs and resolve them into an LLMConfig."""
    values = {name: kwargs.pop(name) for name in LLM_OPTION_NAMES if name in kwargs}
    base_urls: list[str] = []
    for url in values.pop("base_urls", ()) or ():
        base_urls += [u for u in url.replace(",", " ").split() if u]
    no_cache = values.pop("no_cache", False)
    config = LLMConfig(base_urls=base_urls, cache=not no_cache, adapter=adapter,
                       **{k: v for k, v in values.items() if v is not None})
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

