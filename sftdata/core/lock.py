"""One writer per run directory: an OS file lock (``flock``) on ``<dir>/.lock``.

Two processes writing the same run directory interleave their journals: duplicate ids, and a
resume that "repairs" them into lost records. So every stage that writes a directory takes this
lock first. The kernel releases it when the process ends, however it ends (SIGKILL included), so
a lock file left by a crashed run is stale by construction: the next run simply takes it. The file
holds the holder's pid, host and command line, which the refused process prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from .errors import EnvironmentProblem, redact

LOCK_NAME = ".lock"


# locks this process holds, by lock file: (descriptor, holders). The lock keeps *other processes*
# out; within one process a library user may open the same directory twice (a RunDir per call).
_HELD: dict[str, list[int]] = {}


class DirLock:
    """Held from construction until :meth:`release` (or the process's end)."""

    def __init__(self, directory: str | os.PathLike[str], option: str = "--out") -> None:
        self.path = Path(directory) / LOCK_NAME
        self._key: str | None = None
        key = os.path.realpath(self.path)
        if key in _HELD:
            _HELD[key][1] += 1
            self._key = key
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _describe(self.path)
            os.close(fd)
            raise EnvironmentProblem(
                f"{option}: {Path(directory)} is in use by another sftdata process ({holder}); wait for it "
                f"to finish or stop it, or choose another {option}") from None
        _HELD[key] = [fd, 1]
        self._key = key
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "command": _command_line()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder, ensure_ascii=True) + "\n").encode(), 0)

    def release(self) -> None:
        key, self._key = self._key, None
        if key is None or key not in _HELD:
            return
        _HELD[key][1] -= 1
        if _HELD[key][1] == 0:
            os.close(_HELD.pop(key)[0])  # closing the descriptor drops the flock; the file stays, unlocked

    def __enter__(self) -> DirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def _command_line() -> str:
    """This process's command line for the lock file, with the value of every key option blanked
    (the key is not registered for redaction yet when the lock is taken)."""
    words, blank_next = [], False
    for arg in sys.argv[1:]:
        secret = arg.split("=", 1)[0].lower() in ("--api-key", "--set") or "api_key" in arg.lower()
        words.append("***" if blank_next else arg.split("=", 1)[0] + "=***" if secret and "=" in arg else arg)
        blank_next = secret and "=" not in arg
    return redact(" ".join(["sftdata", *words]))[:500]


def _describe(path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {holder['pid']} on {holder['host']} since {holder['started']}: {holder['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
