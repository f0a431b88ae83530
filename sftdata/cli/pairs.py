"""``sftdata pairs INPUTS --out DIR``: preference pairs from ranked candidates."""

from __future__ import annotations

from pathlib import Path

import click

from ..core import settings
from ..pairs.config import PairsConfig
from ._options import json_option, llm_options, pop_llm_config, print_summary


@click.command("pairs")
@click.argument("inputs", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: pairs.jsonl, rejected.jsonl, stats.json, export/.")
@settings.click_options(PairsConfig)
@click.option("--judge-model", help="The judge's model (default: --model). [env: SFTDATA_JUDGE_MODEL]")
@click.option("--judge-base-url", "judge_base_url", multiple=True,
              help="The judge's endpoint (default: --base-url). [env: SFTDATA_JUDGE_BASE_URL]")
@click.option("--judge-api-key", help="The judge endpoint's API key. Never written anywhere. "
                                      "[env: SFTDATA_JUDGE_API_KEY]")
@llm_options
@json_option
def command(inputs: tuple[Path, ...], out: Path, judge_model: str | None, judge_base_url: tuple[str, ...],
            judge_api_key: str | None, as_json: bool, **kwargs) -> None:
    """Make preference pairs (prompt, chosen, rejected, margin, provenance) from INPUTS.

    \b
    Candidates per instruction: the records holding it (and meta.output_b), --candidates N
    samples from the LLM, one per --candidate-model and one per --candidate-adapter.
    Ranked (--rank-by) by the LLM judge's scores, pairwise judging in both orders, a reward
    model, meta.judge scores already there, or people (feedback.jsonl of `sftdata review`).
    The best and the worst candidate make the pair; ties and margins under --min-margin go
    to rejected.jsonl with the reason.

    \b
    Examples:
      sftdata pairs runs/demo/accepted.jsonl --out pairs --candidates 3 --rank-by judge
      sftdata pairs data.jsonl --out pairs --candidate-adapter adapters/sft --rank-by pairwise
      sftdata pairs judged/accepted.jsonl --out pairs --rank-by meta --min-margin 2
      sftdata pairs reviewed.jsonl --out pairs --rank-by human --feedback reviewed/feedback.jsonl
      sftdata pairs data.jsonl --out pairs --candidates 4 --rank-by reward --reward-model rm/
    """
    from ..judge import JudgeConfig, judge_llm_config
    from ..pairs.stage import pairs_from_files

    llm_config = pop_llm_config(kwargs)
    config = settings.from_options(PairsConfig, kwargs)
    config.validate()
    judge_config = JudgeConfig(rubric=config.rubric, judge_model=judge_model, judge_base_url=list(judge_base_url),
                               seed=config.seed)
    judge_llm = judge_llm_config(judge_config, llm_config, api_key=judge_api_key) \
        if config.rank_by in ("judge", "pairwise") else None
    summary = pairs_from_files(list(inputs), config, out, llm_config=llm_config, judge_config=judge_config,
                               judge_llm=judge_llm)
    print_summary(f"{summary['pairs']} pairs -> {out / 'pairs.jsonl'}", summary, as_json)
