"""pyproject.toml's package list: every package and data directory the wheel needs, so an install
neither drops a module nor prints setuptools' "Package would be ignored" warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]


def _listed() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    return set(config["packages"])


def test_every_code_and_data_directory_is_a_listed_package():
    wanted = {".".join(d.relative_to(ROOT).parts) for d in (ROOT / "sftdata").rglob("*")
              if d.is_dir() and "__pycache__" not in d.parts and any(d.glob("*.py"))}
    wanted.add("sftdata")
    for top, mapped in (("prompts", "sftdata.prompts"), ("seeds", "sftdata.seeds")):
        wanted.add(mapped)
        wanted |= {f"{mapped}.{d.name}" for d in (ROOT / top).iterdir() if d.is_dir() and d.name != "__pycache__"}
    assert wanted - _listed() == set(), "add these to [tool.setuptools] packages in pyproject.toml"
