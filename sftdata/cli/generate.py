"""``sftdata generate``: grow a task pool from seed tasks (Self-Instruct or Alpaca)."""

from __future__ import annotations

import click

from ..generate import GenerateConfig, generate
from ._options import json_option, llm_options, pop_llm_config, print_summary


@click.command("generate")
@click.option("--seeds", "seeds", multiple=True, type=click.Path(dir_okay=False),
              help="Seed tasks (JSONL): our seed files, Self-Instruct's seed_tasks.jsonl as it is, or any "
                   "Record JSONL. Repeatable. Default: the packaged seeds/<lang>.jsonl.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Run directory. Re-running the same command there resumes.")
@click.option("--num-instructions", type=int, default=100, show_default=True,
              help="Stop once this many new tasks have accepted instances.")
@click.option("--mode", type=click.Choice(["self-instruct", "alpaca"]), default="self-instruct", show_default=True,
              help="Self-Instruct's four steps, or Alpaca's one pass (complete tasks per request).")
@click.option("--lang", type=click.Choice(["en", "zh"]), help="Prompt and filter language. Default: the seeds' language.")
@click.option("--instances-per-task", type=int, default=5, show_default=True, help="Self-Instruct: at most K instances per task.")
@click.option("--instructions-per-request", type=int, default=8, show_default=True,
              help="Self-Instruct: new instructions asked for per request.")
@click.option("--seed-tasks-in-prompt", type=int,
              help="Seed instructions shown per request. Default: 6 (self-instruct), 3 (alpaca).")
@click.option("--machine-tasks-in-prompt", type=int, default=2, show_default=True,
              help="Self-Instruct: generated instructions shown per request (seeds fill in while the pool is small).")
@click.option("--alpaca-tasks-per-request", type=int, default=20, show_default=True,
              help="Alpaca: complete tasks asked for per request.")
@click.option("--temperature", type=float,
              help="Sampling temperature for new instructions/tasks. Default: 0.7 (self-instruct), 1.0 (alpaca); "
                   "classification and instances are greedy, as in the original.")
@click.option("--top-p", type=float, help="Nucleus sampling. Default: 0.5 (self-instruct), 1.0 (alpaca).")
@click.option("--max-tokens", type=int, help="Token limit per reply. Default: 1024 (3072 for alpaca batches).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for prompt sampling and request seeds.")
@click.option("--round-size", type=int, default=16, show_default=True,
              help="Generation requests sent together per round (a checkpoint follows every round).")
@click.option("--rouge-threshold", type=float, default=0.7, show_default=True,
              help="Reject an instruction whose ROUGE-L F against a kept one is above this.")
@click.option("--rouge-tokenizer", type=click.Choice(["auto", "rouge", "cjk"]), default="auto", show_default=True,
              help="ROUGE-L tokens: rouge-score's, one per CJK character, or by script (auto).")
@click.option("--min-words", type=int, default=3, show_default=True,
              help="Keep an instruction longer than this many words (Chinese: two characters count as a word).")
@click.option("--max-words", type=int, default=150, show_default=True, help="Longest instruction kept.")
@click.option("--no-rule", "no_rule", multiple=True, metavar="NAME",
              help="Turn a filter rule off (rouge, length, blacklist, format, language...). Repeatable.")
@click.option("--fresh", is_flag=True, help="Delete what a previous run left in --out and start over.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
@llm_options
def command(seeds: tuple[str, ...], out_dir: str, fresh: bool, no_progress: bool, as_json: bool,
            **kwargs: object) -> None:
    """Generate instruction data from seed tasks with an LLM.

    \b
    Examples:
      sftdata generate --out runs/en --num-instructions 100            # embedded model, offline
      sftdata generate --out runs/zh --lang zh --num-instructions 50 \\
          --base-url http://localhost:8000/v1 --model Qwen/Qwen2.5-7B-Instruct   # a model that writes Chinese
      sftdata generate --seeds seed_tasks.jsonl --out runs/api --num-instructions 5000 \\
          --base-url https://api.openai.com/v1 --model gpt-4o-mini --concurrency 32 --max-cost 5
    Output in --out: instructions.jsonl, accepted.jsonl, rejected.jsonl, failures.jsonl, stats.json.
    """
    llm_config = pop_llm_config(kwargs)
    kwargs["no_rule"] = list(kwargs.get("no_rule") or ())
    config = GenerateConfig(seeds=list(seeds), **kwargs)  # type: ignore[arg-type]
    summary = generate(config, llm_config, out_dir, fresh=fresh, progress=not no_progress)
    if summary["stalled"]:
        click.echo(f"warning: {summary['stop_reason']} ({out_dir}/rejected.jsonl)", err=True)
    print_summary(f"generate: {summary['instructions']} instructions, {summary['records']} records in {out_dir}",
                  summary, as_json)
