"""``sftdata llm chat`` and ``sftdata llm bench``: talk to the configured model, measure its throughput."""

from __future__ import annotations

import time

import click

from ..llm.base import Request
from ..llm.client import make_llm
from ._options import json_option, llm_options, pop_llm_config, print_summary


@click.group("llm")
def command() -> None:
    """Talk to the configured LLM (an endpoint, or the embedded model when none is set)."""


@command.command("chat")
@click.argument("prompt")
@click.option("--system", help="System message.")
@click.option("--adapter", type=click.Path(exists=True, file_okay=False),
              help="A PEFT adapter directory (from `sftdata finetune`) on top of the local model.")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0 means greedy.")
@click.option("--top-p", type=float, default=1.0, show_default=True)
@click.option("--max-tokens", type=int, default=256, show_default=True)
@llm_options
def chat(prompt: str, system: str | None, adapter: str | None, temperature: float, top_p: float,
         max_tokens: int, **kwargs: object) -> None:
    """Send PROMPT and print the reply.

    \b
    Example (embedded model, offline):
      sftdata llm chat "Name three primary colors."
    """
    config = pop_llm_config(kwargs, adapter=adapter)
    config.cache = False
    llm = make_llm(config)
    request = Request.chat(prompt, system=system, temperature=temperature, top_p=top_p, max_tokens=max_tokens)
    completion = llm.complete_sync([request])[0]
    if not completion.ok:
        from ..core.errors import LLMError
        raise LLMError(f"request failed after {completion.attempts} attempts: {completion.error}: "
                       f"{completion.error_detail}")
    click.echo(completion.text)


@command.command("bench")
@click.option("-n", "--requests", "count", type=int, default=32, show_default=True, help="Prompts to send.")
@click.option("--max-tokens", type=int, default=64, show_default=True)
@click.option("--temperature", type=float, default=0.7, show_default=True)
@click.option("--top-p", type=float, default=0.9, show_default=True)
@json_option
@llm_options
def bench(count: int, max_tokens: int, temperature: float, top_p: float, as_json: bool, **kwargs: object) -> None:
    """Measure the configured backend's throughput (requests/s, generated tokens/s). No cache."""
    config = pop_llm_config(kwargs)
    config.cache = False
    llm = make_llm(config)
    topics = ["the sea", "a city at night", "bread", "a river", "winter", "a library", "trains", "bees"]
    requests = [Request.chat(f"Write two sentences about {topics[i % len(topics)]}. (#{i})",
                             temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=i)
                for i in range(count)]
    started = time.perf_counter()
    completions = llm.complete_sync(requests)
    seconds = time.perf_counter() - started
    tokens = sum(c.usage.completion_tokens for c in completions)
    from ..estimate import record_speed
    record_speed(llm.backend.name, config.model or "", count, seconds, f"llm bench ({max_tokens} tokens per reply)")
    print_summary("llm bench", {
        "backend": config.backend, "model": llm.model_name, "requests": count,
        "failed": sum(not c.ok for c in completions), "seconds": round(seconds, 3),
        "requests_per_s": round(count / seconds, 2), "generated_tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 1),
    }, as_json)
