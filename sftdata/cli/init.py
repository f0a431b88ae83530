"""``sftdata init DIR``: scaffold a project (config, seed tasks to edit, next steps)."""

from __future__ import annotations

import click

from ..scaffold import scaffold


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@click.option("--domain", default="general", show_default=True,
              help="Domain of the dataset, e.g. medical, legal, finance, code, or any word.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def command(directory: str, lang: str, domain: str, force: bool) -> None:
    """Create DIR with config.yaml, seeds.jsonl (example tasks to edit) and a README of next steps.

    \b
    Example:
      sftdata init my-medical --lang zh --domain medical
      cd my-medical && sftdata run config.yaml --dry-run
    """
    written = scaffold(directory, lang=lang, domain=domain, force=force)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: edit {directory}/seeds.jsonl, then `sftdata run {directory}/config.yaml --dry-run`")
