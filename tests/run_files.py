"""Reading what a run directory holds: its JSONL files and the keys of its response cache."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from sftdata.llm.base import Request


def read_rows(path: Path) -> list[dict]:
    """The rows of a JSONL file; none when it does not exist yet."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cache_keys(path: Path) -> set[str]:
    """The keys of every response a run directory's cache holds."""
    if not path.exists():
        return set()
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT key FROM responses")}


def body_key(body: dict) -> str:
    """The cache key of a request body the server received (as the client computes it)."""
    request = Request(messages=tuple((m["role"], m["content"]) for m in body["messages"]),
                      temperature=body["temperature"], top_p=body["top_p"], max_tokens=body["max_tokens"],
                      stop=tuple(body.get("stop") or ()), seed=body.get("seed"))
    return request.cache_key("openai", "test-model")
