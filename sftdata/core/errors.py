"""Every exception sftdata raises on purpose, in one place.

The CLI maps them to exit codes (docs/architecture.md, "The run directory"): anything else is an internal error (exit 1).

    SftdataError                  base class; ``exit_code`` says how the CLI ends
    ├── ConfigError               bad option or configuration value (exit 2)
    ├── DataError                 bad input file; carries ``path`` and ``line`` (exit 2)
    ├── LLMError                  the endpoint is unusable after retries (exit 3)
    │   └── EndpointUnavailable   down at start, or failing for many requests in a row
    ├── EnvironmentProblem        the disk is full, a file size limit, the run directory in use (exit 2)
    ├── BudgetExhausted           --max-requests / --max-cost reached; state is saved (exit 0)
    └── Interrupted               Ctrl-C; state is saved (exit 130)

Messages never contain API keys: :func:`redact` is applied to every message we build from
text that could hold one (URLs, exception strings from the HTTP stack). It also blanks the
credentials a URL can carry: ``user:password@`` and the values of its query string.
"""

from __future__ import annotations

import re

__all__ = [
    "SftdataError", "ConfigError", "DataError", "LLMError", "EndpointUnavailable",
    "BudgetExhausted", "Interrupted", "EnvironmentProblem", "redact", "redact_url", "register_secret",
]

_SECRETS: set[str] = set()
_KEY_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+\S+)")


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` removes it from anything we print or write."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s\"'<>]+")
_USERINFO = re.compile(r"^([^:]+://)[^/?#@]*@")
_QUERY_VALUE = re.compile(r"([?#&;][^=&#;?]*=)[^&#;]+")


def _redact_one_url(match: re.Match) -> str:
    url = _USERINFO.sub(r"\1***@", match.group())
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=-1)
    if cut < 0:
        return url
    return url[:cut] + _QUERY_VALUE.sub(r"\1***", url[cut:])


def redact_url(text: str) -> str:
    """``text`` with every URL's ``user:password@`` and the values of its query string (and
    fragment) replaced by ``***``: ``http://u:p@h/v1?key=K`` -> ``http://***@h/v1?key=***``."""
    return _URL.sub(_redact_one_url, text) if "://" in text else text


def redact(text: str) -> str:
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return redact_url(_KEY_PATTERN.sub("***", text))


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


class EnvironmentProblem(SftdataError):
    """The machine, not the input, stops the run: the disk is full, a file size limit was reached,
    another process holds the run directory. State is saved up to the last checkpoint (exit 2)."""

    exit_code = 2


class BudgetExhausted(SftdataError):
    """A hard budget was reached. Not a failure: the run stops cleanly and can be resumed."""

    exit_code = 0


class Interrupted(SftdataError):
    exit_code = 130
