"""``sftdata filter``: ROUGE-L novelty (exact, fast, Chinese-aware), length, blacklist, format, language rules."""

from __future__ import annotations

from pathlib import Path

import click

from ..filter.rules import RULES, FilterConfig, describe_rules
from ..filter.stage import run_filter
from ._options import json_option, print_summary


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@click.command("filter", epilog=describe_rules())
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: accepted.jsonl, rejected.jsonl (reason = the rule's name, with detail), "
                   "filter_summary.json.")
@click.option("--against", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL whose instructions are preloaded into the ROUGE-L index (e.g. the seeds); "
                   "they are not written out. Repeatable.")
@click.option("--rouge-threshold", type=float, default=0.7, show_default=True,
              help="Reject an instruction whose ROUGE-L F against a kept one is above this (0.7 itself is kept).")
@click.option("--rouge-tokenizer", type=click.Choice(["auto", "rouge", "cjk"]), default="auto", show_default=True,
              help="rouge: rouge-score's tokens exactly (Chinese gets none); cjk: one token per CJK character; "
                   "auto: per text, identical to rouge on text without CJK characters.")
@click.option("--lang", help="Expected language (en, zh, ...): others are rejected. Default: each record's "
                             "own lang field; no language rule for records without one.")
@click.option("--min-words", type=int, default=3, show_default=True,
              help="An instruction needs more than this many words (CJK text: characters).")
@click.option("--max-words", type=int, default=150, show_default=True,
              help="... and at most this many.")
@click.option("--min-chars", type=int, help="CJK text: a separate lower bound in characters (default: --min-words).")
@click.option("--max-chars", type=int, help="CJK text: a separate upper bound in characters (default: --max-words).")
@click.option("--blacklist", "blacklist", multiple=True, metavar="WORD",
              help="Another blacklisted word or phrase (repeatable or comma-separated).")
@click.option("--no-rule", "no_rule", multiple=True, metavar="NAME",
              help=f"Switch a rule off (repeatable or comma-separated): {', '.join(RULES)}.")
@click.option("--instance-rules/--no-instance-rules", default=None,
              help="Apply the instance rules (empty_output, output_equals_input, ends_with_colon). "
                   "Default: yes, unless no input record has an output yet.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
def command(inputs: tuple[Path, ...], out_dir: Path, against: tuple[Path, ...], rouge_threshold: float,
            rouge_tokenizer: str, lang: str | None, min_words: int, max_words: int, min_chars: int | None,
            max_chars: int | None, blacklist: tuple[str, ...], no_rule: tuple[str, ...],
            instance_rules: bool | None, no_progress: bool, as_json: bool) -> None:
    """Filter INPUTS (records, alpaca, sharegpt, messages, prompt-completion or seed tasks).

    Keeps a record when every rule passes; a rejected record goes to rejected.jsonl with the
    name of the rule as its reason. ROUGE-L makes exactly the decisions of rouge-score scored
    against every kept instruction (Self-Instruct / Alpaca), only much faster.

    \b
    Examples:
      sftdata filter runs/en/accepted.jsonl --out runs/en-filtered --against seeds/en.jsonl
      sftdata filter data.jsonl --out out --lang zh --no-rule format,blacklist
    """
    config = FilterConfig(
        rouge_threshold=rouge_threshold, rouge_tokenizer=rouge_tokenizer, lang=lang.lower() if lang else None,
        min_words=min_words, max_words=max_words, min_chars=min_chars, max_chars=max_chars,
        disabled=frozenset(_split(no_rule)), blacklist=tuple(_split(blacklist)), instance_rules=instance_rules,
    ).validate()
    summary = run_filter(inputs, out_dir, config, against, progress=not no_progress and not as_json)
    if not as_json:
        summary["by_reason"] = {k: v for k, v in summary["by_reason"].items() if v}
    print_summary("filter", summary, as_json)
