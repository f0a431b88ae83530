"""The Python API (docs/api.md): ``sftdata.__all__`` names the functions the CLI calls, each loaded on
first use so ``import sftdata`` stays cheap, and the documented offline example runs as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sftdata

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "api.md"


def test_import_is_cheap_and_every_public_name_resolves():
    code = ("import sys, sftdata; heavy = [m for m in ('torch', 'numpy', 'openai', 'transformers', 'datasets', "
            "'langdetect', 'huggingface_hub') if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
    assert sftdata.__all__ == sorted(sftdata.__all__) and len(sftdata.__all__) >= 20
    for name in sftdata.__all__:
        assert getattr(sftdata, name) is not None and name in dir(sftdata)
    with pytest.raises(AttributeError, match="no_such_thing"):
        sftdata.no_such_thing  # noqa: B018


def test_the_cli_commands_call_the_same_functions():
    import importlib

    augment, clean, export, generate, run, filter_cli = (importlib.import_module(f"sftdata.cli.{name}") for name in
                                                         ("augment", "clean", "export", "generate", "run", "filter"))
    assert export.export is sftdata.export_records and filter_cli.run_filter is sftdata.run_filter
    assert clean.run_clean is sftdata.run_clean and run.run_pipeline is sftdata.run_pipeline
    assert generate.generate is sftdata.run_generate and augment.augment is sftdata.run_augment


def test_every_public_name_is_documented():
    text = DOC.read_text(encoding="utf-8")
    assert not [name for name in sftdata.__all__ if f"`{name}" not in text]


def test_the_documented_example_runs_offline(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert blocks
    script = tmp_path / "example.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "5 kept, ['rouge'] rejected" in result.stdout and "user -> assistant" in result.stdout
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "license: apache-2.0" in card and "## Prompt layout" in card
    accepted = [json.loads(line) for line in (tmp_path / "filtered" / "accepted.jsonl").open(encoding="utf-8")]
    assert len(accepted) == 5
