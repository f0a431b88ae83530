"""The ``sftdata`` command: a click group. Commands parse options and call the library; nothing more.

``main`` maps errors to the exit codes of docs/architecture.md: 0 ok, 1 internal error, 2 bad input or
configuration, 3 endpoint unusable, 130 interrupted. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
import warnings

import click

from .. import __version__
from ..core.errors import BudgetExhausted, EnvironmentProblem, SftdataError, redact

# Every command: its module ``sftdata/cli/<name>.py`` (defining ``command``, a click command or group)
# and the first paragraph of its help, all that `sftdata --help` shows of it. A module is imported only
# when its command runs or shows its own help, so `sftdata --help` loads none of them (and none of the
# stage code behind them); tests/unit/test_cli_lazy.py checks these lines against the commands' help.
COMMANDS: dict[str, str] = {
    "augment": "Augment the records of INPUTS (records, alpaca, sharegpt, messages, prompt-completion or seed "
               "tasks).",
    "clean": "Clean INPUTS (records, alpaca, sharegpt, messages, prompt-completion or seed tasks).",
    "eval": "Loss, perplexity, token accuracy, ROUGE-L, exact match and classification P/R/F1 on DATA.",
    "export": "Export INPUTS (any of: records, alpaca, sharegpt, messages, prompt-completion, seed tasks).",
    "filter": "Filter INPUTS (records, alpaca, sharegpt, messages, prompt-completion or seed tasks).",
    "finetune": "Fine-tune a PEFT adapter (LoRA, prefix, prompt tuning, IA3) on exported JSONL.",
    "generate": "Generate instruction data from seed tasks with an LLM.",
    "init": "Create DIR with config.yaml, seeds.jsonl (example tasks to edit) and a README of next steps.",
    "judge": "Judge the records of INPUTS with an LLM; each gets meta.judge (rubric, score, verdicts, rationale, "
             "model).",
    "llm": "Talk to the configured LLM (an endpoint, or the embedded model when none is set).",
    "pairs": "Make preference pairs (prompt, chosen, rejected, margin, provenance) from INPUTS.",
    "report": "Table 1, ROUGE-L to the seeds, lengths, leading verbs, rejections, languages, lineage, token usage "
              "and cost, loss curves: report.html (images inline, no network), stats.json, PNG figures.",
    "review": "Review the records of PATH in a browser: keep / reject, score, edit the output, A/B for pairs.",
    "run": "Run the pipeline's stages (generate -> filter -> ... -> report) from CONFIG.",
    "select": "Keep the judged records of INPUTS (from `sftdata judge`) that pass; people's labels win.",
}


def _help() -> str:
    """The group's help, its stage list from the registry (so a new stage shows up by itself)."""
    from ..registry import specs

    other = [("review", "a local page where people keep / reject / score / edit records (feedback.jsonl)"),
             ("run", "the whole pipeline from one YAML/TOML config (`sftdata run --list-keys`: every key)"),
             ("init", "scaffold a project: config, seed tasks to edit, next steps"),
             ("llm", "talk to the configured model (chat) and measure its throughput (bench)")]
    rows = [(s.name, s.help) for s in specs()] + other
    width = max(len(name) for name, _ in rows)
    lines = "\n".join(f"  {name:<{width}}  {text}" for name, text in rows)
    return ("Grow instruction-tuning (SFT) datasets from seed tasks, filter and export them, fine-tune on them.\n\n"
            "\b\nStages (each reads and writes JSONL; run `sftdata COMMAND --help`):\n" + lines + "\n"
            "With no endpoint configured (--base-url / OPENAI_BASE_URL) the embedded\n"
            "SmolLM2-135M-Instruct model answers, offline.")


class _Group(click.Group):
    """The top-level group. Its help is built when shown, so a stage registered at run time is listed;
    a command of :data:`COMMANDS` is imported when it is looked up, and its help line comes from there."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(importlib.import_module(f".{cmd_name}", __name__).command, cmd_name)
        return self.commands.get(cmd_name)

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.help = _help()
        super().format_help_text(ctx, formatter)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own listing would import every command for its help line: stand-ins carry the line
        # of a command not imported yet, and click shortens it as it would the command's own help
        real = self.commands
        try:
            self.commands = {**{name: click.Command(name, help=text) for name, text in COMMANDS.items()}, **real}
            super().format_commands(ctx, formatter)
        finally:
            self.commands = real


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sftdata")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    pass


def _exit_now(code: int, process: bool) -> None:
    """Exit with ``code`` at once after Ctrl-C: without joining a worker thread still busy (the local
    engine finishing a batch nobody waits for: the interpreter would join it, for a minute or more)
    and, in the ``sftdata`` process itself, without the interpreter's teardown (seconds under load).
    Everything that matters is on disk already: journals are flushed per line, the run directory and
    the cache were closed on the way out."""
    import threading

    busy = [t for t in threading.enumerate() if t.is_alive() and not t.daemon and t.name.startswith("asyncio_")]
    if busy or process:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("SFTDATA_DEBUG") == "1"


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class _NoDatabase(Exception):
    """Never raised: stands for sqlite3.DatabaseError while sqlite3 is not imported."""


def _database_error() -> type[Exception]:
    """sqlite3's DatabaseError, looked up when an error is being handled: a process that never imported
    sqlite3 (imported here, `sftdata --help` would pay for it) cannot have had a database error."""
    sqlite3 = sys.modules.get("sqlite3")
    return sqlite3.DatabaseError if sqlite3 is not None else _NoDatabase


def _environment_problem(exc: BaseException) -> EnvironmentProblem | None:
    """A full disk or a file size limit, wherever it struck (a journal, the SQLite cache, a temp
    file), as the environment error it is: every stage saves its state at each checkpoint and cuts
    half-written lines on resume, so freeing space and re-running continues the run."""
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        where = f" writing {exc.filename}" if exc.filename else ""
        what = f"{exc.strerror}{where}"
    elif isinstance(exc, _database_error()) and any(
            text in str(exc) for text in ("database or disk is full", "disk I/O error")):
        what = f"the response cache could not be written ({exc})"
    else:
        return None
    return EnvironmentProblem(f"no room to write: {what}; state is saved up to the last checkpoint: free some "
                              "disk space (or raise the file size limit) and re-run the same command to resume")


def _surrogate_safe_stdout() -> None:
    # a file name that is not valid UTF-8 (held as surrogates) is printed as its original bytes
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None and (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "") == "utf8":
        reconfigure(errors="surrogateescape")


def quiet_libraries() -> None:
    """Keep the libraries' noise out of our output: their progress bars ("Loading weights", "Writing model
    shards", datasets' map bars: ours say what is going on), FutureWarnings about their own APIs and
    their info logs. Set before they are imported; an environment variable the user set wins."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' and datasets' bars too
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for module in ("transformers", "peft", "trl", "datasets", "accelerate", "torch", "huggingface_hub"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=rf"{module}(\.|$)")


def _traceback() -> str:
    import traceback

    return traceback.format_exc()


def main(argv: list[str] | None = None) -> None:
    argv_given = argv
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_libraries()
    debug = _debug_requested(argv)
    _surrogate_safe_stdout()
    try:
        try:
            cli.main(args=argv, prog_name="sftdata", standalone_mode=False)
        except (OSError, _database_error()) as exc:
            problem = _environment_problem(exc)
            if problem is None:
                raise
            raise problem from exc
    except BudgetExhausted as exc:
        click.echo(f"stopped: {exc} (state saved; raise the budget and re-run to continue)", err=True)
        sys.exit(0)
    except SftdataError as exc:
        if debug:
            click.echo(redact(_traceback()), err=True)
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        click.echo("interrupted (state saved; re-run the same command to resume)", err=True)
        _exit_now(130, process=argv_given is None)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: exit 1, no traceback unless asked
        if debug:
            click.echo(redact(_traceback()), err=True)
        click.echo(f"internal error: {redact(f'{type(exc).__name__}: {exc}')} (re-run with --debug for the traceback)",
                   err=True)
        sys.exit(1)
