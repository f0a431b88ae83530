"""The ``sftdata`` command: a click group. Commands parse options and call the library; nothing more.

``main`` maps errors to the exit codes of DESIGN.md: 0 ok, 1 internal error, 2 bad input or
configuration, 3 endpoint unusable, 130 interrupted. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import click

from .. import __version__
from ..core.errors import BudgetExhausted, SftdataError, redact

# one module per command group, each defining ``command`` (a click command or group)
COMMAND_MODULES = ["llm", "generate", "filter", "clean", "augment", "export", "finetune", "eval",
                   "report", "run", "init", "judge", "select", "review", "pairs"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sftdata")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """Grow instruction-tuning (SFT) datasets from seed tasks, filter and export them, fine-tune on them.

    \b
    Stages (each reads and writes JSONL; run `sftdata COMMAND --help`):
      generate  Self-Instruct / Alpaca bootstrap from seed tasks
      filter    ROUGE-L novelty, language, length, blacklist, format rules
      clean     normalize text; drop refusals, truncations, repetition, outliers
      augment   Evol-Instruct evolution, paraphrase, rule-based variations
      judge     an LLM judge scores records (self-instruct, score, pairwise)
      select    keep records by judge score or human labels
      review    a local page where people keep / reject / score / edit records
      export    alpaca / sharegpt / messages / prompt-completion, splits, dataset card
      finetune  LoRA / prefix / prompt / IA3 with transformers + peft; DPO and reward models on pairs
      pairs     preference pairs ranked by the judge, a reward model or people
      eval      held-out loss, generation metrics, base vs adapters
      report    statistics and plots as one HTML page
      run       the whole pipeline from one YAML/TOML config
    With no endpoint configured (--base-url / OPENAI_BASE_URL) the embedded
    SmolLM2-135M-Instruct model answers, offline.
    """


for _name in COMMAND_MODULES:
    cli.add_command(importlib.import_module(f".{_name}", __name__).command)


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("SFTDATA_DEBUG") == "1"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(argv)
    try:
        cli.main(args=argv, prog_name="sftdata", standalone_mode=False)
    except BudgetExhausted as exc:
        click.echo(f"stopped: {exc} (state saved; raise the budget and re-run to continue)", err=True)
        sys.exit(0)
    except SftdataError as exc:
        if debug:
            click.echo(redact(traceback.format_exc()), err=True)
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        click.echo("interrupted (state saved; re-run the same command to resume)", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: exit 1, no traceback unless asked
        if debug:
            click.echo(redact(traceback.format_exc()), err=True)
        click.echo(f"internal error: {redact(f'{type(exc).__name__}: {exc}')} (re-run with --debug for the traceback)",
                   err=True)
        sys.exit(1)
