"""``sftdata run CONFIG``: the whole pipeline from one YAML/TOML file."""

from __future__ import annotations

import json

import click

from ..estimate import estimate
from ..pipeline import PATHS_NOTE, load_pipeline, plan, run_pipeline
from ..pipeline import list_keys as config_keys
from ._options import json_option


@click.command("run")
@click.argument("config", type=click.Path(dir_okay=False), required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override any config key, e.g. --set generate.num_instructions=200 --set llm.model=gpt-4o-mini.")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory (default: the config's `out`, "
              "else runs/<name>).")
@click.option("--dry-run", is_flag=True, help="Print the plan and an estimate of requests, tokens and cost; run nothing.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--list-keys", is_flag=True, help="List every key a config may hold, with its default and help; "
                                                 "run nothing.")
@json_option
def command(config: str | None, overrides: tuple[str, ...], out: str | None, dry_run: bool, no_progress: bool,
            list_keys: bool, as_json: bool) -> None:
    """Run the pipeline's stages (generate -> filter -> ... -> report) from CONFIG.

    Each stage writes its own subdirectory of the run directory. Re-running the same command resumes
    at the first unfinished stage; changing a stage's settings re-runs that stage and the ones after
    it. Switch a stage off with `enabled: false`.

    \b
    Examples:
      sftdata run examples/demo.yaml
      sftdata run examples/legal-en.yaml --set llm.model=gpt-4o-mini --dry-run
      sftdata run my.yaml --set filter.rouge_threshold=0.6
      sftdata run --list-keys
    """
    if list_keys:
        _print_keys(as_json)
        return
    if config is None:
        raise click.UsageError("missing argument 'CONFIG' (or give --list-keys)")
    pipeline = load_pipeline(config, list(overrides), out=out)
    if dry_run:
        steps = plan(pipeline)
        guess = estimate(pipeline)
        if as_json:
            click.echo(json.dumps({"plan": steps, "estimate": guess}, indent=2))
            return
        click.echo(f"run directory: {pipeline.out}")
        for step in steps:
            click.echo(f"  {step['stage']:<9} {step['action']}")
        click.echo("estimate (LLM stages, a fresh run; not a bound, see error):")
        for key, value in guess.items():
            if key == "stages":
                for stage, figures in value.items():
                    click.echo(f"  {stage}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
            else:
                click.echo(f"  {key}: {value}")
        return
    summary = run_pipeline(pipeline, progress=not no_progress, log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    click.echo(f"\nrun directory: {summary['out']}")
    for name, info in summary["stages"].items():
        details = ", ".join(f"{k}={v}" for k, v in info.items() if k != "action")
        click.echo(f"  {name:<9} {info['action']:<8} {details}")
    out_dir = pipeline.out
    if (out_dir / "report" / "report.html").exists():
        click.echo(f"report:  {out_dir / 'report' / 'report.html'}")
    if (out_dir / "export").exists():
        click.echo(f"data:    {out_dir / 'export'}")
    if (out_dir / "finetune").exists():
        click.echo(f"adapter: {out_dir / 'finetune'}  (try: sftdata llm chat --adapter {out_dir / 'finetune'} \"...\")")


def _print_keys(as_json: bool) -> None:
    rows = config_keys()
    if as_json:
        click.echo(json.dumps([{"key": k, "default": d, "help": h} for k, d, h in rows], indent=2))
        return
    click.echo("Every key of a `sftdata run` config (a stage's section: `<stage>: {key: value}`; "
               "`--set key=value` overrides any). " + PATHS_NOTE)
    width = max(len(k) for k, _, _ in rows)
    for key, default, text in rows:
        shown = f" [default: {default}]" if default else ""
        click.echo(f"  {key:<{width}}  {text}{shown}")
