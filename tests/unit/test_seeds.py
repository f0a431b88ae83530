"""The shipped seed files: schema, size, mix of task kinds, no near-duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftdata.core.paths import seeds_dir
from sftdata.core.records import read_records
from sftdata.filter.rouge import RougeIndex

FILES = [(seeds_dir() / "en.jsonl", 175), (seeds_dir() / "zh.jsonl", 120),
         (seeds_dir() / "domains/legal-en.jsonl", 25), (seeds_dir() / "domains/medical-zh.jsonl", 25),
         (seeds_dir() / "domains/finance-zh.jsonl", 25)]


@pytest.mark.parametrize(("path", "minimum"), FILES, ids=[p.name for p, _ in FILES])
def test_seed_file(path: Path, minimum: int) -> None:
    tasks = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(tasks) >= minimum
    assert all(set(t) == {"id", "name", "instruction", "instances", "is_classification"} for t in tasks)
    assert [t["id"] for t in tasks] == [f"seed_task_{i}" for i in range(len(tasks))]
    assert len({t["name"] for t in tasks}) == len(tasks)
    share = sum(t["is_classification"] for t in tasks) / len(tasks)
    assert 0.10 <= share <= 0.20, share
    with_input = sum(any(i["input"].strip() for i in t["instances"]) for t in tasks) / len(tasks)
    assert 0.3 <= with_input <= 0.7, with_input
    records = list(read_records(path))
    assert all(r.output.strip() for r in records)
    index = RougeIndex(tokenizer="auto", threshold=0.7)
    for task in tasks:
        assert index.check_and_add(task["instruction"]).novel, task["instruction"]
