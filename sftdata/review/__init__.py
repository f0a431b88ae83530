"""``sftdata review PATH``: a local page where a person keeps / rejects, scores, edits and compares records.

Starlette + uvicorn, plain HTML/JS shipped in ``sftdata/review/static`` (no build step, no CDN).
Actions go to ``feedback.jsonl`` at once (shape: :mod:`sftdata.judge`); ``select``, ``judge --gold``
and the pairs stage read it.

    from sftdata.review import serve
    serve("runs/demo/judge/accepted.jsonl")          # http://127.0.0.1:8765/
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..core.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(path: str | os.PathLike[str], feedback: str | os.PathLike[str] | None = None, *, host: str = "127.0.0.1",
          port: int = 8765, allow_remote: bool = False, token: str | None = None, reviewer: str | None = None,
          announce=print) -> None:
    """Serve the review page until interrupted. A non-loopback ``host`` needs ``allow_remote`` and then
    every API request needs ``token`` (generated when not given), which the announced URL carries."""
    try:
        import uvicorn

        from .server import make_app
    except ImportError as exc:
        raise ConfigError(f"the review page needs starlette and uvicorn ({exc.name} is missing): "
                          "pip install 'sftdata[review]'", "review") from None

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such file: {path}", "PATH")
    remote = host not in LOOPBACK
    if remote and not allow_remote:
        raise ConfigError(f"binding to {host} exposes the page beyond this machine; pass --allow-remote "
                          "(a token is then required in the URL)", "--host")
    if remote:
        token = token or secrets.token_urlsafe(18)
    shown = f"[{host}]" if ":" in host else host
    hosts = {f"{shown}:{port}"} | ({f"localhost:{port}", f"127.0.0.1:{port}"} if not remote else set())
    if remote:
        hosts |= {f"{name}:{port}" for name in _local_names()}
    app = make_app(path, feedback, hosts=hosts, token=token, reviewer=reviewer)
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    announce(f"reviewing {path} ({len(app.state.review.records)} records) -> {app.state.review.feedback}")
    announce(f"open {url}   (Ctrl-C to stop; every action is already saved)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _local_names() -> set[str]:
    import socket

    names = {socket.gethostname(), socket.getfqdn()}
    try:
        names |= set(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return names


__all__ = ["serve"]
