"""The CLI imports a command's module only when that command is used, and what `sftdata --help` shows
without importing them (sftdata.cli.COMMANDS) is what the commands themselves say. The same goes for
the names the configs hold so as not to import the modules that compile patterns."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from sftdata.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parents[2]


def _first_paragraph(text: str) -> str:
    return " ".join(text.partition("\n\n")[0].split())


def test_every_command_module_is_listed_with_its_own_help_line() -> None:
    modules = sorted(p.stem for p in (ROOT / "sftdata" / "cli").glob("*.py") if not p.stem.startswith("_"))
    assert sorted(COMMANDS) == modules
    for name, line in COMMANDS.items():
        command = importlib.import_module(f"sftdata.cli.{name}").command
        assert command.name == name
        assert not command.short_help and not command.hidden  # the help line stands in for these
        assert _first_paragraph(command.help) == " ".join(line.split()), name


def _top_level_help(import_first: bool) -> tuple[str, str]:
    """(`sftdata --help`, the command modules imported), in a fresh process: with every command imported
    first, the listing is click's own."""
    first = "import click; from sftdata.cli import COMMANDS, cli\n" \
            "for name in COMMANDS: cli.get_command(click.Context(cli), name)\n" if import_first else ""
    probe = first + "import sys; from sftdata.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n" \
                    "print(sorted(m for m in sys.modules if m.startswith('sftdata.cli.')), file=sys.stderr)"
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr.strip().splitlines()[-1]


def test_top_level_help_without_the_commands_is_the_help_with_them() -> None:
    lazy, imported = _top_level_help(import_first=False)
    assert imported == "[]"  # no command module was imported
    loaded, imported = _top_level_help(import_first=True)
    assert imported != "[]"
    assert "Commands:\n  augment " in lazy and lazy == loaded


def test_a_command_added_at_run_time_is_listed_and_runs(monkeypatch) -> None:
    @click.command("zz-plugin")
    def plugin() -> None:
        """A command a plugin adds."""
        click.echo("plugin ran")

    monkeypatch.setattr(cli, "commands", dict(cli.commands))
    cli.add_command(plugin)
    listing = CliRunner().invoke(cli, ["--help"])
    assert "zz-plugin  A command a plugin adds." in listing.output
    assert CliRunner().invoke(cli, ["zz-plugin"]).output == "plugin ran\n"
    unknown = CliRunner().invoke(cli, ["no-such-command"])
    assert unknown.exit_code == 2 and "No such command 'no-such-command'" in unknown.output


def test_names_the_configs_hold_are_the_modules_names() -> None:
    from sftdata.augment import config as augment_config
    from sftdata.augment import evol
    from sftdata.export import config as export_config
    from sftdata.export import preference
    from sftdata.filter import config as filter_config
    from sftdata.filter import tokenize

    assert filter_config.TOKENIZERS == tuple(tokenize.TOKENIZERS)
    assert evol.EVOL_OPS is augment_config.EVOL_OPS and evol.PARAPHRASE == augment_config.PARAPHRASE
    assert preference.PREFERENCE_FORMATS is export_config.PREFERENCE_FORMATS


def test_known_langs_are_langdetects_profiles() -> None:
    from langdetect.detector_factory import PROFILES_DIRECTORY

    from sftdata.text.lang import known_langs

    profiles = {p.name.split("-")[0] for p in Path(PROFILES_DIRECTORY).iterdir() if not p.name.startswith(".")}
    assert profiles and profiles <= known_langs() and {"en", "zh", "ja", "ko"} <= known_langs()
