"""The run directory: config snapshot, append-only journals, checkpoints, resume.

Resume works by checkpoints. A stage appends records to its journals as it goes and, after
each unit of work (a round of requests), calls :meth:`RunDir.checkpoint` with the number of
lines each journal holds and any small state it needs. On restart, journals are cut back to the
last checkpoint, so a unit interrupted halfway is redone from the cache, never duplicated.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ConfigError, redact
from .lock import LOCK_NAME, DirLock
from .records import dumps, json_text, write_text_atomic

SECRET_KEYS = ("api_key", "api-key", "apikey", "token", "secret", "password", "authorization")
CHECKPOINTS = "checkpoints.jsonl"
# The audit log of requests and the spend ledger are never rolled back: what was paid stays paid.
NOT_ROLLED_BACK = {CHECKPOINTS, "requests.jsonl", "spend.jsonl"}


def _secret_key(key: object) -> bool:
    # "token" counts as a word of the key, not a substring: "access_token" is a secret,
    # "max_tokens" and "prompt_tokens" (settings and usage counts) are not
    name = str(key).lower()
    words = set(name.replace("-", "_").split("_"))
    return any(s in words if s == "token" else s in name for s in SECRET_KEYS)


def strip_secrets(value: Any) -> Any:
    """A copy of ``value`` with every secret-looking key dropped and secrets redacted."""
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items() if not _secret_key(k)}
    if isinstance(value, (list, tuple)):
        return [strip_secrets(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


class Journal:
    """An append-only JSONL file, flushed per line. A cut-off last line is dropped on open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = self._repair()
        self._fh = open(path, "a", encoding="utf-8", newline="\n")

    def _raw_lines(self) -> Iterator[bytes]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            yield from fh

    def _repair(self) -> int:
        """Cut a last line that a crash left without its newline or with broken JSON; return the
        number of lines kept."""
        if not self.path.exists():
            return 0
        with open(self.path, "rb+") as fh:
            data_end = fh.seek(0, os.SEEK_END)
            keep = lines = 0
            fh.seek(0)
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                try:
                    json.loads(line)
                except ValueError:
                    break
                keep += len(line)
                lines += 1
            if keep != data_end:
                fh.truncate(keep)
        return lines

    def append(self, row: Any) -> None:
        self._fh.write(dumps(row) + "\n")
        self._fh.flush()
        self.count += 1

    def read(self) -> list[dict]:
        self._fh.flush()
        return [json.loads(line) for line in self._raw_lines()]

    def truncate_to(self, lines: int) -> None:
        """Keep only the first ``lines`` lines (used to roll back to a checkpoint)."""
        if lines >= self.count:  # nothing to roll back: no need to read the file
            return
        self._fh.flush()
        keep, kept = 0, 0
        for line in self._raw_lines():
            if kept == lines:
                break
            keep += len(line)
            kept += 1
        with open(self.path, "rb+") as fh:
            fh.truncate(keep)
        self.count = kept

    def close(self) -> None:
        self._fh.close()


def writable_dir(path: Path) -> None:
    """Create ``path`` if needed and prove it can be written, or say which ``--out`` cannot."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to output directory {path}: {exc.strerror}", "--out") from None


class RunDir:
    """One run's directory, locked against a second writer until :meth:`close` (or the process's
    end). ``fresh=True`` deletes what a previous run left there."""

    def __init__(self, path: str | os.PathLike[str], fresh: bool = False) -> None:
        self.path = Path(path)
        writable_dir(self.path)
        self._lock: DirLock | None = DirLock(self.path)
        if fresh:  # under the lock: never delete what a running process is writing
            for child in self.path.iterdir():
                if child.name != LOCK_NAME:
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        self._journals: dict[str, Journal] = {}

    def file(self, name: str) -> Path:
        return self.path / name

    def journal(self, name: str) -> Journal:
        if name not in self._journals:
            self._journals[name] = Journal(self.path / name)
        return self._journals[name]

    # ------------------------------------------------------------ config and stats
    def write_json(self, name: str, data: Any) -> None:
        write_text_atomic(self.path / name, json_text(strip_secrets(data), indent=2, sort_keys=True) + "\n")

    def read_json(self, name: str) -> Any:
        path = self.path / name
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def write_config(self, config: dict[str, Any]) -> None:
        self.write_json("config.json", config)

    # ------------------------------------------------------------ checkpoints
    def checkpoint(self, state: dict[str, Any]) -> None:
        """Record that every journal's current content is complete, with ``state``."""
        counts = {name: j.count for name, j in self._journals.items() if name not in NOT_ROLLED_BACK}
        self.journal(CHECKPOINTS).append({"journals": counts, "state": state})

    def resume(self) -> dict[str, Any] | None:
        """Roll journals back to the last checkpoint; return its state (None: nothing to resume)."""
        checkpoints = self.journal(CHECKPOINTS).read()
        last = checkpoints[-1] if checkpoints else {"journals": {}, "state": None}
        for path in self.path.glob("*.jsonl"):
            if path.name not in NOT_ROLLED_BACK:
                self.journal(path.name).truncate_to(last["journals"].get(path.name, 0))
        return last["state"]

    def close(self) -> None:
        try:
            for journal in self._journals.values():
                journal.close()
        finally:  # a journal that cannot flush (full disk) still lets the lock go
            self._journals.clear()
            if self._lock is not None:
                self._lock.release()
                self._lock = None
