"""``sftdata judge``: an LLM judge scores records by a rubric (meta.judge), and calibrates against humans."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..core import settings
from ..judge.config import ENV_API_KEY, JudgeConfig, judge_llm_config
from ._options import json_option, llm_options, pop_llm_config, print_summary


@click.command("judge")
@click.argument("inputs", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: accepted.jsonl (every record with meta.judge), failures.jsonl, stats.json, "
                   "calibration.json (with --gold).")
@settings.click_options(JudgeConfig)
@click.option("--judge-api-key", help=f"The judge endpoint's API key (default: --api-key when the judge uses "
                                      f"the same endpoint). Never written anywhere. [env: {ENV_API_KEY}]")
@click.option("--reward-model", type=click.Path(file_okay=False),
              help="Score with this `sftdata finetune --method reward` directory instead of an LLM: each record "
                   "gets meta.judge.reward (no request is sent; the rubric and LLM options do not apply).")
@click.option("--dry-run", is_flag=True, help="Print the estimate of requests, tokens and cost; send nothing.")
@click.option("--fresh", is_flag=True, help="Start over: delete what a previous run left in --out.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@llm_options
@json_option
def command(inputs: tuple[Path, ...], out: Path, judge_api_key: str | None, reward_model: str | None, dry_run: bool,
            fresh: bool, no_progress: bool, as_json: bool, **kwargs) -> None:
    """Judge the records of INPUTS with an LLM; each gets meta.judge (rubric, score, verdicts, rationale, model).

    \b
    Rubrics (--rubric):
      self-instruct  valid task? appropriate input? correct output? (yes/no) and a rating
                     A correct and satisfying, B minor imperfections, C significant errors,
                     D irrelevant or invalid (score A=4 .. D=1), as in the Self-Instruct paper
      score          an integer 1-10 with helpfulness, correctness, fit sub-scores (AlpaGasus)
      pairwise       which of two responses is better (A: output, B: meta.output_b), asked in
                     both orders; orders that disagree count as a tie (position bias measured)
    The usual LLM options configure the judge; --judge-model / --judge-base-url /
    --judge-api-key (or SFTDATA_JUDGE_*) give it its own endpoint, e.g. a strong model
    judging a cheap generator's data. A reply with no verdict is asked again once with a
    stricter instruction, then recorded with its raw text and no score (never a default).
    --gold FILE judges human-labelled records (meta.human: keep, score, rating, verdicts,
    choice) and prints agreement: accuracy and Cohen's kappa per criterion, Spearman for
    scores, the position-bias rate for pairwise. The embedded model is a weak judge.

    \b
    Examples:
      sftdata judge runs/demo/accepted.jsonl --out runs/demo-judge --rubric self-instruct
      sftdata judge data.jsonl --out j --judge-base-url https://api.openai.com/v1 --judge-model gpt-4o
      sftdata judge --gold tests/data/judge_gold.jsonl --out calib --rubric score
      sftdata judge data.jsonl --out scored --reward-model rm/      # a trained reward model
    """
    generic = pop_llm_config(kwargs)
    config = settings.from_options(JudgeConfig, kwargs)
    config.validate()
    if reward_model is not None:
        if config.gold or dry_run:
            raise click.UsageError("--reward-model scores records without requests: no --gold, no --dry-run")
        from ..judge.reward import reward_files

        print_summary("judge", reward_files(list(inputs), reward_model, out, limit=config.limit), as_json)
        return
    llm_config = judge_llm_config(config, generic, api_key=judge_api_key)
    if dry_run:
        _print_estimate(inputs, config, llm_config, as_json)
        return
    from ..judge.api import judge_files

    summary = judge_files(list(inputs), config, llm_config, out, fresh=fresh, progress=not no_progress)
    calibration = summary.pop("calibration", None)
    print_summary("judge", summary, as_json)
    if calibration is not None and not as_json:
        from ..judge.calibrate import format_agreement

        click.echo(format_agreement(calibration))
        click.echo(f"  saved: {out / 'calibration.json'}")
    elif calibration is not None:
        click.echo(json.dumps({"calibration": calibration}, ensure_ascii=False, indent=2))


def _print_estimate(inputs: tuple[Path, ...], config: JudgeConfig, llm_config, as_json: bool) -> None:
    from ..core.records import read_all
    from ..judge.estimate import estimate_judge

    records = read_all(list(inputs) + ([Path(config.gold)] if config.gold else []))
    if config.limit:
        records = records[: config.limit]
    chars = sum(len(r.instruction) + len(r.input) + len(r.output) for r in records) / max(1, len(records))
    lang = config.lang if config.lang != "auto" else "en"
    guess = estimate_judge(len(records), chars, config, lang, llm_config.price_in, llm_config.price_out)
    guess["judge"] = f"{llm_config.backend}: {llm_config.model or 'embedded SmolLM2-135M-Instruct'}"
    if as_json:
        click.echo(json.dumps(guess, indent=2))
        return
    click.echo("estimate (upper bound, nothing sent):")
    for key, value in guess.items():
        click.echo(f"  {key}: {value}")
