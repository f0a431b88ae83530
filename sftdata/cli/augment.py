"""``sftdata augment``: Evol-Instruct evolution, paraphrase and rule-based variations of instructions."""

from __future__ import annotations

from pathlib import Path

import click

from ..augment import OPS, AugmentConfig, augment
from ..core.settings import click_options, from_options
from ._options import json_option, llm_options, pop_llm_config, print_summary


@click.command("augment")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: accepted.jsonl (the NEW records only: feed the input files and it "
                   "together to the next stage), rejected.jsonl (with reasons), failures.jsonl, stats.json.")
@click.option("--ops", "ops", required=True, multiple=True, metavar="OPS",
              help=f"Comma-separated operations (repeatable): {', '.join(OPS)}; groups: evol, rule, all.")
@click_options(AugmentConfig)
@click.option("--fresh", is_flag=True, help="Start over: delete what a previous run left in --out.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@llm_options
@json_option
def command(inputs: tuple[Path, ...], out: Path, fresh: bool, no_progress: bool, as_json: bool,
            ops: tuple[str, ...], **kwargs) -> None:
    """Augment the records of INPUTS (records, alpaca, sharegpt, messages, prompt-completion or seed tasks).

    \b
    Operations:
      constraints, deepen, concretize, reasoning, complicate-input   Evol-Instruct in depth
      breadth          a new, rarer task of the same domain (Evol-Instruct in breadth)
      paraphrase       the same instruction in other words (keeps the parent's output)
      rule:template    recast through instruction templates, no LLM (keeps the output)
      rule:keywords    add a keyword or constraint from --keywords / --keyword
    Evolved and keyword instructions are answered by a second request. Evolutions are
    eliminated as in the paper: an LLM check finds no gain over the parent (equal), a
    short apology or stop-words-only answer, copied prompt phrases; a paraphrase the
    check calls different is dropped (meaning_changed). New records carry source
    (evol:<op> / paraphrase / rule:<name>) and parent_id, and pass the filter again:
    ROUGE-L against the inputs and every accepted record, language, length, format.
    Re-running the same command resumes; the LLM cache makes the rerun identical.

    \b
    Example:
      sftdata augment runs/demo/accepted.jsonl --out runs/demo-evol \\
          --ops constraints,deepen,paraphrase,rule:template --rounds 2
    """
    llm_config = pop_llm_config(kwargs)
    config = from_options(AugmentConfig, kwargs, ops=list(ops))
    summary = augment(config, llm_config, list(inputs), out, fresh=fresh, progress=not no_progress)
    if not as_json:  # one line per op; --json has the full counts
        summary["ops"] = {op: f"proposed {c['proposed']}, kept {c['kept']}, eliminated "
                              f"{sum(c['eliminated'].values())}, failed {c['failed']}, skipped {c['skipped']}"
                          for op, c in summary["ops"].items()}
    print_summary("augment", summary, as_json)
