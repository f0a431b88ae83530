"""``sftdata augment``: Evol-Instruct evolution, paraphrase and rule-based variations of instructions."""

from __future__ import annotations

from pathlib import Path

import click

from ..augment import OPS, AugmentConfig, augment
from ..filter.rules import RULES
from ._options import json_option, llm_options, pop_llm_config, print_summary


@click.command("augment")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: accepted.jsonl (the NEW records only: feed the input files and it "
                   "together to the next stage), rejected.jsonl (with reasons), failures.jsonl, stats.json.")
@click.option("--ops", "ops", required=True, multiple=True, metavar="OPS",
              help=f"Comma-separated operations (repeatable): {', '.join(OPS)}; groups: evol, rule, all.")
@click.option("--rounds", type=int, default=1, show_default=True,
              help="Rounds of augmentation: from round 2 on, the survivors of the previous round evolve again.")
@click.option("--ops-per-record", type=int, default=None,
              help="Draw this many of the operations for each record and round (Evol-Instruct draws 1). "
                   "Default: every operation.")
@click.option("--lang", type=click.Choice(["auto", "en", "zh"]), default="auto", show_default=True,
              help="Prompt language; auto: each record's own (declared, else detected).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random choice and request.")
@click.option("--limit", type=int, default=None, help="Augment only the first N input records.")
@click.option("--keywords", "keywords_file", type=click.Path(dir_okay=False, path_type=Path),
              help="rule:keywords: a file with one keyword per line; a line that ends like a sentence "
                   "(\"Answer in under 100 words.\") is a constraint, appended as it is.")
@click.option("--keyword", "keywords", multiple=True, metavar="WORD", help="rule:keywords: a keyword (repeatable).")
@click.option("--rouge-threshold", type=float, default=0.7, show_default=True,
              help="A new instruction whose ROUGE-L F against any input or accepted instruction is above this "
                   "is a near-duplicate and rejected (complicate-input: instruction and input together). "
                   "Recast templates and short keywords often are: raise it to keep more of them.")
@click.option("--min-words", type=int, default=3, show_default=True,
              help="Shortest new instruction (words; Chinese: characters / 2).")
@click.option("--max-words", type=int, default=150, show_default=True, help="Longest new instruction.")
@click.option("--no-rule", "no_rule", multiple=True, metavar="NAME",
              help=f"Switch a filter rule off for new records (repeatable or comma-separated): {', '.join(RULES)}.")
@click.option("--temperature", type=float, default=0.7, show_default=True, help="Sampling temperature.")
@click.option("--max-tokens", type=int, default=512, show_default=True, help="Longest answer, in tokens.")
@click.option("--rewrite-max-tokens", type=int, default=256, show_default=True,
              help="Longest rewritten instruction, in tokens.")
@click.option("--fresh", is_flag=True, help="Start over: delete what a previous run left in --out.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@llm_options
@json_option
def command(inputs: tuple[Path, ...], out: Path, fresh: bool, no_progress: bool, as_json: bool,
            ops: tuple[str, ...], keywords: tuple[str, ...], keywords_file: Path | None, **kwargs) -> None:
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
    no_rule = [name for value in kwargs.pop("no_rule") for name in value.split(",") if name.strip()]
    config = AugmentConfig(ops=list(ops), keywords=list(keywords), no_rule=no_rule,
                           keywords_file=str(keywords_file) if keywords_file else None, **kwargs)
    summary = augment(config, llm_config, list(inputs), out, fresh=fresh, progress=not no_progress)
    if not as_json:  # one line per op; --json has the full counts
        summary["ops"] = {op: f"proposed {c['proposed']}, kept {c['kept']}, eliminated "
                              f"{sum(c['eliminated'].values())}, failed {c['failed']}, skipped {c['skipped']}"
                          for op, c in summary["ops"].items()}
    print_summary("augment", summary, as_json)
