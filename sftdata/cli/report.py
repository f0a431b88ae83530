"""``sftdata report``: statistics and plots of a dataset and its run, as one self-contained HTML page."""

from __future__ import annotations

import click

from ._options import json_option, print_summary


@click.command("report")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(), metavar="RUN_DIR_OR_JSONL...")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory for report.html, stats.json and figures/*.png.")
@click.option("--finetune", type=click.Path(file_okay=False),
              help="Fine-tune output directory whose metrics.json holds the loss curves "
                   "(a run directory's finetune/ is found on its own).")
@click.option("--seeds", type=click.Path(dir_okay=False),
              help="Seed tasks for the ROUGE-L-to-seed histogram. Default: the seed file in the run's "
                   "config.json, else the dataset's source=seed records, else meta.rouge_max.")
@json_option
def command(inputs: tuple[str, ...], out: str, finetune: str | None, seeds: str | None, as_json: bool) -> None:
    """Table 1, ROUGE-L to the seeds, lengths, leading verbs, rejections, languages, lineage, token
    usage and cost, loss curves: report.html (images inline, no network), stats.json, PNG figures.

    RUN_DIR_OR_JSONL: JSONL files in any supported format, or run directories (flat, or with
    generate/ filter/ clean/ augment/ export/ finetune/ eval/ stage subdirectories).
    """
    from ..report.stage import build_report

    stats = build_report(list(inputs), out, finetune=finetune, seeds=seeds,
                         log=lambda msg: click.echo(msg, err=True))
    t1 = stats["table1"]
    summary = {"records": t1["instances"], "instructions": t1["instructions"],
               "classification_instructions": t1["classification_instructions"],
               "languages": stats["languages"], "rejected": stats["rejected_total"],
               "rouge_vs_seeds": {k: stats["rouge_vs_seeds"][k] for k in ("basis", "mean", "median")},
               "figures": len(stats["figures"]), "report": stats["files"]["report"],
               "stats": stats["files"]["stats"]}
    if stats["notes"]:
        summary["notes"] = stats["notes"]
    print_summary("report", summary, as_json)
