"""`sftdata --help`, `sftdata run --help` and `sftdata run CONFIG --dry-run` stay fast (issue 14: about
0.2 s). They import no heavy library (torch, numpy, numba, transformers, matplotlib, openai, datasets,
peft), none of the modules that compile large Unicode patterns or bring the LLM client and the card
writer (those load when a stage runs), and `sftdata --help` not even a command's module or PyYAML.

Time is CPU seconds of the child process, which a loaded machine inflates far less than wall time,
taken as the best of three runs, against the same measure of `python -c "import click"` (Python's
own start and click, which every command pays): with compiled bytecode cached in a directory of the
test's own, so that neither PYTHONDONTWRITEBYTECODE nor a fresh checkout makes every run compile.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "numpy", "numba", "transformers", "matplotlib", "openai", "datasets", "peft", "scipy",
         # not heavy, but asyncio (with ssl) and tqdm were a third of the CPU time of `sftdata run --help`:
         # imported where a stage runs, not at start
         "asyncio", "tqdm")
# what only a running stage needs: compiled Unicode patterns (text, clean, filter's tokenizers, augment),
# langdetect, the LLM client and what it builds on (run directory, SQLite cache), the dataset card
STAGE_ONLY = ("langdetect", "sqlite3", "sftdata.text.refusals", "sftdata.text.reply", "sftdata.clean.rules",
              "sftdata.clean.text", "sftdata.clean.junk", "sftdata.filter.tokenize", "sftdata.augment.evol",
              "sftdata.judge.judgement", "sftdata.llm.client", "sftdata.core.rundir", "sftdata.export.card",
              "sftdata.generate.api", "sftdata.augment.api")
COMMAND_MODULES = ("sftdata.cli.generate", "sftdata.cli.filter", "sftdata.cli.clean", "sftdata.cli.augment",
                   "sftdata.cli.export", "sftdata.cli.finetune", "sftdata.cli.judge", "sftdata.cli.llm")
# CPU seconds a command may take beyond Python's start and click's import: on the shared 2-core VM (load
# 1.3-6) `--help` took 0.08, `run CONFIG --dry-run` 0.15-0.16; before the lazy imports 0.29 and 0.32-0.35
BUDGET_S = 0.22
PROBE = """
import json, sys
from sftdata.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {watched} if m in sys.modules)), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def child_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(tmp_path_factory.mktemp("pycache"))}


def _cpu_seconds(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stderr


def _best_of_three(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    _cpu_seconds(args, env)  # writes the bytecode cache
    runs = [_cpu_seconds(args, env) for _ in range(3)]
    return min(seconds for seconds, _ in runs), runs[-1][1]


@pytest.mark.parametrize(("args", "allowed"), [
    (("--help",), ()),
    (("run", "--help"), ("sftdata.cli.run", "sftdata.pipeline")),
    (("run", "examples/demo.yaml", "--dry-run"), ("sftdata.cli.run", "sftdata.pipeline", "yaml")),
    (("run", "--list-keys"), ("sftdata.cli.run", "sftdata.pipeline")),
])
def test_startup_is_fast_and_imports_only_what_it_needs(args: tuple[str, ...], allowed: tuple[str, ...],
                                                        child_env: dict[str, str]) -> None:
    watched = (*HEAVY, *STAGE_ONLY, *COMMAND_MODULES, "sftdata.cli.run", "sftdata.pipeline", "yaml", "tomllib")
    seconds, stderr = _best_of_three(["-c", PROBE.format(watched=watched), *args], child_env)
    loaded = json.loads(stderr.strip().splitlines()[-1])
    assert [m for m in loaded if m not in allowed] == []
    floor, _ = _best_of_three(["-c", "import click"], child_env)
    assert seconds - floor < BUDGET_S, f"{seconds:.3f} s CPU, {seconds - floor:.3f} s beyond Python and click"


def test_importing_the_cli_imports_no_model_library() -> None:
    probe = "import sys, sftdata.cli; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
