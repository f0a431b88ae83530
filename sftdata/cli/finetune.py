"""``sftdata finetune DATA... --out DIR`` trains an adapter; ``sftdata finetune merge`` merges one;
``sftdata finetune export`` writes GGUF / merged safetensors."""

from __future__ import annotations

import os

import click

from ..core.settings import click_options, from_options
from ..export_model.config import ExportModelConfig
from ..finetune.config import FinetuneConfig
from ._options import json_option, print_summary


class _DefaultTrain(click.Group):
    """A group whose default action is ``train``: ``sftdata finetune DATA --out DIR`` trains,
    ``sftdata finetune merge ADAPTER --out DIR`` merges."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["train", *args]
        return super().parse_args(ctx, args)


@click.group("finetune", cls=_DefaultTrain)
def command() -> None:
    """Fine-tune a PEFT adapter (LoRA, prefix, prompt tuning, IA3) on exported JSONL.

    \b
    Examples:
      sftdata finetune out/train.jsonl --out adapters/demo
      sftdata finetune data.jsonl --out adapters/p --method prompt --lr 3e-2
      torchrun --nproc_per_node 2 $(which sftdata) finetune data.jsonl --out adapters/ddp
      sftdata finetune train pairs/train.jsonl --out adapters/dpo --method dpo --ref-adapter adapters/demo
      sftdata finetune train pairs/train.jsonl --out adapters/rm --method reward
      sftdata finetune merge adapters/demo --out merged/demo
      sftdata llm chat --adapter adapters/demo "Name three primary colors."
    """


@command.command("train")
@click.argument("data", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for the adapter and metrics.")
@click_options(FinetuneConfig)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
def train(data: tuple[str, ...], out: str, no_progress: bool, as_json: bool, **options: object) -> None:
    """Train an adapter on DATA (alpaca, sharegpt, messages or prompt-completion JSONL; for dpo and
    reward, preference pairs: TRL prompt/chosen/rejected, standard or conversational, or
    LLaMA-Factory ranking rows)."""
    from ..finetune.train import finetune

    config = from_options(FinetuneConfig, options, data=list(data), out=out, progress=not no_progress)
    summary = finetune(config)
    if "stopped_at" in summary:
        print_summary(f"stopped after step {summary['stopped_at']} of {summary['steps']}; continue with --resume",
                      summary, as_json)
        return
    if os.environ.get("RANK", "0") != "0":  # under torchrun every process returns; one reports
        return
    print_summary(f"fine-tuned {summary['method']} adapter -> {out}", summary, as_json)


@command.command("merge")
@click.argument("adapter", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for the merged model.")
@click.option("--base-model", type=click.Path(file_okay=False),
              help="Override the base model recorded in the adapter directory.")
@json_option
def merge(adapter: str, out: str, base_model: str | None, as_json: bool) -> None:
    """Merge a LoRA / IA3 ADAPTER into its base model and save a plain HF model to --out."""
    from ..finetune.merge import merge_adapter

    summary = merge_adapter(adapter, out, base_model=base_model)
    print_summary(f"merged {adapter} -> {out}", summary, as_json)


@command.command("export")
@click.argument("source", metavar="ADAPTER_OR_MODEL", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory for the GGUF file(s), Modelfile, USAGE.md and export.json.")
@click_options(ExportModelConfig)
@json_option
def export(source: str | None, out: str, as_json: bool, **options: object) -> None:
    """Export a LoRA / IA3 adapter (merged into its base) or a HF model as GGUF or merged safetensors.

    \b
    ADAPTER_OR_MODEL: an adapter directory from `sftdata finetune`, a HF model directory, or nothing
    for the embedded SmolLM2-135M-Instruct. Examples:
      sftdata finetune export adapters/demo --out gguf/demo                   # q8_0, verified
      sftdata finetune export adapters/demo --out gguf/demo --quant f16,q8_0,q4_0
      sftdata finetune export adapters/demo --out merged/demo --format hf
      ollama create demo -f gguf/demo/Modelfile
    """
    from ..export_model.stage import export_model

    config = from_options(ExportModelConfig, options)
    summary = export_model(source, out, config, log=lambda msg: click.echo(msg, err=True))
    if as_json:
        print_summary("export", summary, as_json=True)
        return
    for file in summary["files"] or [summary["merged"]]:
        click.echo(f"wrote {file}")
    if "verify" in summary:
        click.echo(f"\nverified on {summary['verify']['records']} held-out records "
                   f"({', '.join(summary['verify']['data'])}):\n{summary['verify']['table']}")
    if "modelfile" in summary:
        click.echo(f"\nOllama: ollama create {summary['name']} -f {summary['modelfile']}  (more in {summary['usage']})")
