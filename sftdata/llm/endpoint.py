"""What a ``--base-url`` may be, and the credentials it may carry.

Checked when the options are read, so that ``ftp://...``, ``notaurl`` or ``http://[::1`` stop the run
at once with exit 2 naming ``--base-url`` rather than after a minute of retries (or an exception from
the HTTP client). Credentials in the URL work the way curl and browsers read them: ``user:password@``
becomes HTTP Basic authorization, and a query string (``?key=...``, ``?api-version=...``) is sent
with every request. Neither is ever written or printed: :func:`sftdata.core.errors.redact` blanks
them, and :func:`register_url_secrets` makes sure their values are blanked wherever they appear.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from ..core.errors import ConfigError, redact_url, register_secret

_SECRET_WORDS = ("key", "token", "secret", "sig", "pass", "auth", "code", "cred")


@dataclass(frozen=True)
class Endpoint:
    url: str  # without userinfo, query and fragment
    query: dict[str, str] = field(default_factory=dict)
    basic_auth: str | None = None  # the value of an Authorization header, from user:password@


def check_base_url(url: str, option: str = "--base-url") -> Endpoint:
    """The parts of ``url``, or a ConfigError naming ``option`` and what is wrong."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in range
        host = parts.hostname
    except ValueError as exc:
        raise ConfigError(f"{shown!r} is not a valid URL ({exc})", option) from None
    if parts.scheme not in ("http", "https"):
        what = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ConfigError(f"{shown!r} has {what}; expected http:// or https://, e.g. "
                          "http://localhost:8000/v1", option)
    if not host:
        raise ConfigError(f"{shown!r} has no host; expected e.g. http://localhost:8000/v1", option)
    if any(ch.isspace() for ch in url):
        raise ConfigError(f"{shown!r} contains whitespace", option)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    basic = None
    if "@" in parts.netloc:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        register_secret(password)
        register_secret(user if len(user) >= 8 else None)
        basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        register_secret(basic.split(" ", 1)[1])
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name, value in query.items():
        # values that look like keys are blanked everywhere; "api-version=2024-06-01" is not one
        if len(value) >= 20 or (len(value) >= 6 and any(w in name.lower() for w in _SECRET_WORDS)):
            register_secret(value)
    del port
    return Endpoint(urlunsplit((parts.scheme, netloc, parts.path, "", "")), query, basic)
