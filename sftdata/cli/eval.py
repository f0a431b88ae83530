"""``sftdata eval``: the base model, each adapter and each GGUF file on held-out data, side by side."""

from __future__ import annotations

import click

from ..core.settings import click_options, from_options
from ..eval.config import EvalConfig
from ._options import json_option, print_summary


@click.command("eval")
@click.argument("data", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--base-model", type=click.Path(file_okay=False),
              help="Local HF model directory. Default: the base the adapters were fine-tuned on "
                   "(their sftdata_finetune.json), else the embedded SmolLM2-135M-Instruct.")
@click.option("--adapter", "adapters", multiple=True, type=click.Path(file_okay=False),
              help="PEFT adapter directory evaluated on top of the base model. Repeat to compare several.")
@click.option("--gguf", "ggufs", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="GGUF file (e.g. from `sftdata finetune export`) evaluated beside the base and adapters, "
                   "read through transformers (dequantized). Repeatable.")
@click_options(EvalConfig)
@click.option("--labels-from", multiple=True, type=click.Path(dir_okay=False),
              help="Record JSONL (e.g. the run's accepted.jsonl) that says which instructions are "
                   "classification tasks; exported formats lose is_classification. Repeatable.")
@click.option("--reward-model", "reward_models", multiple=True, type=click.Path(file_okay=False),
              help="Preference DATA: a `finetune --method reward` directory to evaluate too. Repeatable.")
@click.option("--beta", type=float, default=0.1, show_default=True,
              help="Preference DATA: beta of the adapters' implicit DPO reward (as trained).")
@click.option("--out", default="eval", show_default=True, type=click.Path(file_okay=False),
              help="Directory for eval.json, eval.md and predictions.jsonl.")
@json_option
def command(data: tuple[str, ...], base_model: str | None, adapters: tuple[str, ...], ggufs: tuple[str, ...],
            labels_from: tuple[str, ...], reward_models: tuple[str, ...], beta: float, out: str, as_json: bool,
            **options: object) -> None:
    """Loss, perplexity, token accuracy, ROUGE-L, exact match and classification P/R/F1 on DATA.

    DATA: JSONL in any supported format (Record, alpaca, sharegpt, messages, prompt-completion,
    self-instruct seed tasks), typically the test split written by `sftdata export`. Records carrying
    `is_classification: true` (or named so by --labels-from) also get accuracy and macro P/R/F1.

    Preference DATA (prompt/chosen/rejected rows, e.g. a DPO run's eval.jsonl or `sftdata pairs`
    exports): preference accuracy and mean margin of the base, each --adapter (log-probabilities,
    and the implicit DPO reward against the base) and each --reward-model.
    """
    from ..eval.preference import is_preference_file

    config = from_options(EvalConfig, options)
    if is_preference_file(data[0]):
        if ggufs:
            raise click.UsageError("--gguf needs SFT DATA; preference DATA (chosen / rejected rows) compares "
                                   "the base, adapters and reward models")
        _preference(data, base_model, adapters, reward_models, beta, config, out, as_json)
        return
    if reward_models:
        raise click.UsageError("--reward-model needs preference DATA (rows with chosen and rejected)")
    from ..eval.stage import evaluate, json_safe, render_table, write_outputs

    report = evaluate(list(data), base_model=base_model, adapters=list(adapters),
                      options=config,
                      labels_from=list(labels_from), log=lambda msg: click.echo(msg, err=True),
                      ggufs=list(ggufs))
    files = write_outputs(report, out)
    if as_json:
        summary = {k: v for k, v in report.items() if k != "predictions"}
        summary["files"] = files
        print_summary("eval", json_safe(summary), as_json=True)
        return
    click.echo(render_table(report))
    counts = report["counts"]
    click.echo(f"\n{counts['evaluated']} records ({counts['classification']} classification); "
               f"wrote {files['eval.json']}, {files['eval.md']}, {files['predictions.jsonl']}")


def _preference(data: tuple[str, ...], base_model: str | None, adapters: tuple[str, ...],
                reward_models: tuple[str, ...], beta: float, config: EvalConfig, out: str, as_json: bool) -> None:
    from ..eval.preference import evaluate_preferences, render_preference_table, write_preference_outputs

    report = evaluate_preferences(list(data), base_model=base_model, adapters=list(adapters),
                                  reward_models=list(reward_models), beta=beta, max_len=config.max_len,
                                  limit=config.limit,
                                  log=lambda msg: click.echo(msg, err=True))
    files = write_preference_outputs(report, out)
    if as_json:
        print_summary("eval", {**report, "files": files}, as_json=True)
        return
    click.echo(render_preference_table(report))
    click.echo(f"\n{report['pairs']} pairs; wrote {files['eval.json']}, {files['eval.md']}")
