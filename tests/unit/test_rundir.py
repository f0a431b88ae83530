from __future__ import annotations

from pathlib import Path

import pytest

from sftdata.core.errors import ConfigError
from sftdata.core.rundir import RunDir, strip_secrets


def test_truncated_last_line_is_dropped_on_open(tmp_path: Path) -> None:
    path = tmp_path / "accepted.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3, "b"')
    run = RunDir(tmp_path)
    journal = run.journal("accepted.jsonl")
    assert journal.count == 2
    journal.append({"a": 4})
    assert [row["a"] for row in journal.read()] == [1, 2, 4]


def test_resume_rolls_back_to_last_checkpoint(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    acc = run.journal("accepted.jsonl")
    acc.append({"n": 1})
    run.checkpoint({"round": 1})
    acc.append({"n": 2})  # a round that never finished
    run.journal("requests.jsonl").append({"paid": True})
    run.close()
    again = RunDir(tmp_path)
    assert again.resume() == {"round": 1}
    assert [r["n"] for r in again.journal("accepted.jsonl").read()] == [1]
    assert len(again.journal("requests.jsonl").read()) == 1  # the audit log keeps paid requests


def test_resume_without_checkpoint_empties_journals(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.journal("accepted.jsonl").append({"n": 1})
    run.close()
    again = RunDir(tmp_path)
    assert again.resume() is None
    assert again.journal("accepted.jsonl").read() == []


def test_fresh_starts_over(tmp_path: Path) -> None:
    RunDir(tmp_path / "r").journal("accepted.jsonl").append({"n": 1})
    assert not (RunDir(tmp_path / "r", fresh=True).path / "accepted.jsonl").exists()


def test_config_has_no_secrets(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.write_config({"model": "m", "api_key": "sk-abcdefghijk", "llm": {"API_KEY": "x", "url": "u"}})
    text = (tmp_path / "config.json").read_text()
    assert "sk-abcdefghijk" not in text and "API_KEY" not in text and '"url": "u"' in text
    assert strip_secrets({"token": 1, "n": [{"password": 2, "k": 3}]}) == {"n": [{"k": 3}]}


def test_unwritable_output_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="--out"):
        RunDir(blocker / "sub")
