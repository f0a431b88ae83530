"""Every exception sftdata raises on purpose, in one place.

The CLI maps them to exit codes (docs/architecture.md, "The run directory"): anything else is an internal error (exit 1).

    SftdataError                  base class; ``exit_code`` says how the CLI ends
    ├── ConfigError               bad option or configuration value (exit 2)
    ├── DataError                 bad input file; carries ``path`` and ``line`` (exit 2)
    ├── LLMError                  the endpoint is unusable after retries (exit 3)
    │   └── EndpointUnavailable   down at start, or failing for many requests in a row
    ├── BudgetExhausted           --max-requests / --max-cost reached; state is saved (exit 0)
    └── Interrupted               Ctrl-C; state is saved (exit 130)

Messages never contain API keys: :func:`redact` is applied to every message we build from
text that could hold one (URLs, exception strings from the HTTP stack).
"""

from __future__ import annotations

import re

__all__ = [
    "SftdataError", "ConfigError", "DataError", "LLMError", "EndpointUnavailable",
    "BudgetExhausted", "Interrupted", "redact", "register_secret",
]

_SECRETS: set[str] = set()
_KEY_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+\S+)")


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` removes it from anything we print or write."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return _KEY_PATTERN.sub("***", text)


class SftdataError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class ConfigError(SftdataError):
    """A bad option or configuration value. ``option`` names it when known."""

    exit_code = 2

    def __init__(self, message: str, option: str | None = None) -> None:
        self.option = option
        self.message = message  # without the option, for re-raising under another option's name
        super().__init__(f"{option}: {message}" if option else message)


class DataError(SftdataError):
    """A bad input file. The message reads ``path:line: what is wrong``."""

    exit_code = 2

    def __init__(self, path: object, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class LLMError(SftdataError):
    exit_code = 3


class EndpointUnavailable(LLMError):
    """The endpoint stayed unusable after every retry (down, refusing, or failing in a row)."""


class BudgetExhausted(SftdataError):
    """A hard budget was reached. Not a failure: the run stops cleanly and can be resumed."""

    exit_code = 0


class Interrupted(SftdataError):
    exit_code = 130
