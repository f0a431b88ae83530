"""``feedback.jsonl``: the human actions the review page appends, and the labels folded from them.

One JSON object per line, appended (and flushed) the moment a person acts, so a killed server loses
nothing. The shape is documented in :mod:`sftdata.judge`. Later lines win over earlier ones of the
same kind for the same record id; ``undo`` clears that record's labels.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import DataError

ACTIONS = ("keep", "reject", "score", "edit", "choose", "undo")
CHOICES = ("A", "B", "tie")


@dataclass
class HumanLabel:
    """What people said about one record (None: not said)."""

    keep: bool | None = None
    score: int | None = None
    output: str | None = None  # an edited output
    choice: str | None = None  # A, B or tie for a pair
    verdicts: dict[str, bool] | None = None  # gold files: per-criterion answers (self-instruct questions)
    rating: str | None = None  # gold files: the self-instruct A-D rating

    @property
    def reviewed(self) -> bool:
        return any(v is not None for v in (self.keep, self.score, self.output, self.choice, self.verdicts,
                                           self.rating))


def check_action(row: dict[str, Any]) -> str | None:
    """What is wrong with one feedback line, or None."""
    action = row.get("action")
    if action not in ACTIONS:
        return f"unknown action {action!r} (known: {', '.join(ACTIONS)})"
    if not isinstance(row.get("id"), str) or not row["id"]:
        return "missing record 'id'"
    if action == "score":
        score = row.get("score")
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 10:
            return f"'score' must be an integer 1-10, got {score!r}"
    if action == "edit" and not isinstance(row.get("output"), str):
        return "'output' must be a string"
    if action == "choose" and row.get("choice") not in CHOICES:
        return f"'choice' must be one of {', '.join(CHOICES)}, got {row.get('choice')!r}"
    return None


def read_feedback(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every action of a feedback file, in order. A bad line is a DataError naming file and line; a
    last line cut short by a kill (no newline, not JSON) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            if number == len(lines):  # the unterminated tail of an interrupted write
                break
            raise DataError(path, number, f"not JSON: {exc}") from None
        problem = check_action(row) if isinstance(row, dict) else "expected a JSON object"
        if problem:
            raise DataError(path, number, problem)
        rows.append(row)
    return rows


def append_feedback(path: str | os.PathLike[str], row: dict[str, Any]) -> dict[str, Any]:
    """Append one action (stamped with the time) and flush it to disk before returning."""
    row = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **row}
    problem = check_action(row)
    if problem:
        raise ValueError(problem)
    line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write of one line: a reader never sees half an action
        os.fsync(fd)
    finally:
        os.close(fd)
    return row


def apply(labels: dict[str, HumanLabel], row: dict[str, Any]) -> None:
    """Fold one action into ``labels`` (in place): later actions win, undo clears the record."""
    action = row["action"]
    if action == "undo":
        labels.pop(row["id"], None)
        return
    label = labels.setdefault(row["id"], HumanLabel())
    if action in ("keep", "reject"):
        label.keep = action == "keep"
    elif action == "score":
        label.score = row["score"]
    elif action == "edit":
        label.output = row["output"]
    elif action == "choose":
        label.choice = row["choice"]


def fold(rows: list[dict[str, Any]]) -> dict[str, HumanLabel]:
    """``{record id: HumanLabel}`` from actions in order (later ones win; undo clears)."""
    labels: dict[str, HumanLabel] = {}
    for row in rows:
        apply(labels, row)
    return labels


def human_labels(path: str | os.PathLike[str]) -> dict[str, HumanLabel]:
    """The labels a feedback file holds, by record id."""
    return fold(read_feedback(path))


def label_from_meta(meta: dict[str, Any]) -> HumanLabel | None:
    """A label written into a record (``meta.human``: keep / score / choice, the gold-file shape)."""
    human = meta.get("human")
    if not isinstance(human, dict):
        return None
    label = HumanLabel(keep=human.get("keep") if isinstance(human.get("keep"), bool) else None,
                       score=human.get("score") if isinstance(human.get("score"), (int, float)) else None,
                       choice=human.get("choice") if human.get("choice") in CHOICES else None,
                       rating=human.get("rating") if human.get("rating") in ("A", "B", "C", "D") else None)
    verdicts = human.get("verdicts")
    if isinstance(verdicts, dict):
        label.verdicts = {k: v for k, v in verdicts.items() if isinstance(v, bool)} or None
    return label if label.reviewed else None
