"""What is not ours stays out of our output: library progress bars and FutureWarnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import warnings
from sftdata.cli import main
try:
    main(["--version"])
except SystemExit:
    pass
import transformers
from transformers.utils import logging
print("bars", logging.is_progress_bar_enabled())
warnings.warn_explicit("old API", FutureWarning, "modeling_utils.py", 1, module="transformers.modeling_utils")
warnings.warn_explicit("ours", FutureWarning, "x.py", 1, module="sftdata.x")
"""


def test_library_bars_and_future_warnings_are_silenced_ours_are_not():
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY", "PYTHONWARNINGS")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "bars False" in proc.stdout
    assert "old API" not in proc.stderr and "ours" in proc.stderr
