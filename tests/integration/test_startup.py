"""`sftdata --help` and `sftdata run CONFIG --dry-run` stay fast: they import no heavy library (torch,
numpy, numba, transformers, matplotlib, openai, datasets, peft), only the stage packages' cheap
__init__ / config / step modules. Measured in CPU seconds of the child process, which a loaded
machine does not inflate the way it does wall time."""

from __future__ import annotations

import json
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
PROBE = """
import json, sys
from sftdata.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)), file=sys.stderr)
"""


def _cpu_seconds(*args: str) -> tuple[float, list[str]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stderr.strip().splitlines()[-1])
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), loaded


@pytest.mark.parametrize("args", [("--help",), ("run", "--help"), ("run", "examples/demo.yaml", "--dry-run"),
                                  ("run", "--list-keys")])
def test_startup_imports_nothing_heavy(args: tuple[str, ...]) -> None:
    seconds, loaded = _cpu_seconds(*args)
    assert loaded == []
    assert seconds < 2.0  # ~0.5 s here (Python itself ~0.05 s); importing torch alone costs several


def test_importing_the_cli_imports_no_model_library() -> None:
    probe = "import sys, sftdata.cli; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
