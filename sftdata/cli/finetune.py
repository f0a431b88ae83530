"""``sftdata finetune DATA... --out DIR`` trains an adapter; ``sftdata finetune merge`` merges one."""

from __future__ import annotations

import os

import click

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
@click.option("--base-model", type=click.Path(file_okay=False),
              help="Local HF causal-LM directory. Default: the embedded SmolLM2-135M-Instruct.")
@click.option("--method", type=click.Choice(["lora", "prefix", "prompt", "ia3", "dpo", "reward"]), default="lora",
              show_default=True, help="A PEFT method on SFT data, or on preference pairs: dpo (a LoRA policy) "
                                      "or reward (a LoRA reward model with a scalar head).")
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--lr", type=float, help="Peak learning rate. Default per method: lora 2e-4, ia3 3e-3, "
                                        "prefix 1e-2, prompt 3e-2.")
@click.option("--batch-tokens", type=int, default=4096, show_default=True,
              help="Tokens per batch, padding included (the budget, not a row count).")
@click.option("--grad-accum", type=int, default=1, show_default=True, help="Batches per optimizer step.")
@click.option("--max-len", type=int, default=1024, show_default=True,
              help="Longest example in tokens; longer prompts are cut from the front, never the reply.")
@click.option("--lora-r", type=int, default=16, show_default=True)
@click.option("--lora-alpha", type=int, default=32, show_default=True)
@click.option("--lora-dropout", type=float, default=0.0, show_default=True)
@click.option("--target-modules", default="all-linear", show_default=True,
              help="'all-linear' or comma-separated module names (lora, ia3).")
@click.option("--virtual-tokens", type=int, default=20, show_default=True, help="Prefix / prompt tuning length.")
@click.option("--packing/--no-packing", default=None,
              help="Pack several examples per row (block-diagonal attention). Default: on, off for prefix/prompt.")
@click.option("--eval-split", type=float, default=0.05, show_default=True, help="Fraction held out for eval loss.")
@click.option("--eval-data", multiple=True, type=click.Path(dir_okay=False),
              help="Held-out file(s) to evaluate on instead of a split of DATA.")
@click.option("--eval-every", type=int, default=0, help="Evaluate every N steps (default: ~10 times per run).")
@click.option("--max-steps", type=int, help="Stop after N optimizer steps.")
@click.option("--warmup-ratio", type=float, default=0.05, show_default=True)
@click.option("--max-grad-norm", type=float, default=1.0, show_default=True)
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp32"]), default="auto", show_default=True,
              help="auto: bf16 autocast where the GPU or CPU computes bf16 natively.")
@click.option("--gradient-checkpointing", is_flag=True, help="Recompute activations: less memory, slower.")
@click.option("--beta", type=float, default=0.1, show_default=True, help="dpo: pull towards the reference.")
@click.option("--loss", type=click.Choice(["sigmoid", "ipo", "hinge"]), default="sigmoid", show_default=True,
              help="dpo: the preference loss (TRL's formulas).")
@click.option("--ref-adapter", type=click.Path(file_okay=False),
              help="dpo: an SFT adapter that is the reference and the starting policy (default: the base).")
@click.option("--save-every", type=int, default=0, show_default=True,
              help="dpo/reward: write --out/checkpoint every N steps (always on Ctrl-C).")
@click.option("--resume", is_flag=True, help="dpo/reward: continue from --out/checkpoint.")
@click.option("--stop-after", type=int, help="dpo/reward: checkpoint and stop after N steps (resume later).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
def train(data: tuple[str, ...], out: str, eval_data: tuple[str, ...], no_progress: bool, as_json: bool,
          **options: object) -> None:
    """Train an adapter on DATA (alpaca, sharegpt, messages or prompt-completion JSONL; for dpo and
    reward, preference pairs: TRL prompt/chosen/rejected, standard or conversational, or
    LLaMA-Factory ranking rows)."""
    from ..finetune.train import FinetuneConfig, finetune

    config = FinetuneConfig(data=list(data), out=out, eval_data=list(eval_data), progress=not no_progress,
                            **options)  # type: ignore[arg-type]
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
