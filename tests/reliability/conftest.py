"""Fixtures of the reliability suite (helpers live in helpers_rel.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_rel import AUGMENT_INPUTS, write_rows, write_seeds


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    return write_seeds(tmp_path / "seeds.jsonl")


@pytest.fixture
def augment_input(tmp_path: Path) -> Path:
    return write_rows(tmp_path / "augment-in.jsonl", AUGMENT_INPUTS)
