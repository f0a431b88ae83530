"""SQLite response cache: an identical request (same backend, model, messages, sampling, seed) is never sent twice."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from .base import Completion


class ResponseCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit: a response is durable the moment it is stored, so a crash never re-pays it
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, completion TEXT NOT NULL)")

    def get(self, key: str) -> Completion | None:
        row = self._db.execute("SELECT completion FROM responses WHERE key = ?", (key,)).fetchone()
        return Completion.from_cache(json.loads(row[0])) if row else None

    def put(self, key: str, completion: Completion) -> None:
        self._db.execute("INSERT OR REPLACE INTO responses (key, completion) VALUES (?, ?)",
                         (key, json.dumps(completion.to_cache(), ensure_ascii=False)))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
