"""``sftdata generate``: grow a task pool from seed tasks (Self-Instruct or Alpaca)."""

from __future__ import annotations

import click

from ..core.settings import click_options, from_options
from ..generate import GenerateConfig, generate
from ._options import json_option, llm_options, pop_llm_config, print_summary


@click.command("generate")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Run directory. Re-running the same command there resumes.")
@click_options(GenerateConfig)
@click.option("--fresh", is_flag=True, help="Delete what a previous run left in --out and start over.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
@llm_options
def command(out_dir: str, fresh: bool, no_progress: bool, as_json: bool, **kwargs: object) -> None:
    """Generate instruction data from seed tasks with an LLM.

    \b
    Examples:
      sftdata generate --out runs/en --num-instructions 100            # embedded model, offline
      sftdata generate --out runs/zh --lang zh --num-instructions 50
      sftdata generate --seeds seed_tasks.jsonl --out runs/api --num-instructions 5000 \\
          --base-url https://api.openai.com/v1 --model gpt-4o-mini --concurrency 32 --max-cost 5
    Output in --out: instructions.jsonl, accepted.jsonl, rejected.jsonl, failures.jsonl, stats.json.
    """
    llm_config = pop_llm_config(kwargs)
    config = from_options(GenerateConfig, kwargs)
    summary = generate(config, llm_config, out_dir, fresh=fresh, progress=not no_progress)
    if summary["stalled"]:
        click.echo(f"warning: stopped early: no new task in the last {config.stall_rounds} rounds; see "
                   f"{out_dir}/rejected.jsonl for why (the model may not follow the prompts)", err=True)
    print_summary(f"generate: {summary['instructions']} instructions, {summary['records']} records in {out_dir}",
                  summary, as_json)
