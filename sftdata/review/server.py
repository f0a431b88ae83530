"""The review page's server: Starlette on uvicorn, one JSONL file, one feedback.jsonl.

Every action is appended to ``feedback.jsonl`` (and fsynced) before the reply, so a killed server
loses nothing; the page asks ``/api/state`` on load and opens at the first unreviewed record.
Guards: record text reaches the page as JSON and is put in with ``textContent`` only (plus a strict
Content-Security-Policy: no inline script runs); a state-changing request must be JSON and carry no
Origin but the page's own; the Host header must be the address served (no DNS rebinding); on any
address other than loopback every request needs the token from the printed URL.
"""

from __future__ import annotations

import hmac
import os
import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.records import Record, read_numbered_records
from ..judge.feedback import append_feedback, apply, fold, read_feedback

STATIC = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class ReviewState:
    """The records under review and the feedback file, shared by the request handlers."""

    def __init__(self, path: Path, feedback: Path, reviewer: str | None = None) -> None:
        self.path = path
        self.feedback = feedback
        self.reviewer = reviewer
        self.records: list[Record] = [record for _, record in read_numbered_records(path)]
        self.ids = [r.id for r in self.records]
        self.lock = threading.Lock()
        self.labels = fold(read_feedback(feedback))  # a bad feedback file fails at start, naming the line

    def record_view(self, index: int, record: Record) -> dict[str, Any]:
        judge = record.meta.get("judge") if isinstance(record.meta.get("judge"), dict) else {}
        output_b = record.meta.get("output_b")
        return {"index": index, "id": record.id, "instruction": record.instruction, "input": record.input,
                "output": record.output, "output_b": output_b if isinstance(output_b, str) else None,
                "judge": {k: judge.get(k) for k in ("rubric", "score", "rating", "winner", "rationale", "error")
                          if judge.get(k) is not None}}

    def label_view(self, record_id: str) -> dict[str, Any] | None:
        label = self.labels.get(record_id)
        if label is None:
            return None
        return {k: v for k, v in (("keep", label.keep), ("score", label.score), ("output", label.output),
                                  ("choice", label.choice)) if v is not None}

    def reviewed(self) -> int:
        return sum(1 for i in self.ids if i in self.labels)

    def first_unreviewed(self) -> int:
        return next((n for n, i in enumerate(self.ids) if i not in self.labels), len(self.ids))


class Guard:
    """Host, origin and token checks in front of every request (pure ASGI, before routing)."""

    def __init__(self, app: ASGIApp, hosts: set[str], token: str | None) -> None:
        self.app, self.hosts, self.token = app, hosts, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        problem = self.problem(request)
        if problem:
            return await JSONResponse({"error": problem}, status_code=403)(scope, receive, send)
        await self.app(scope, receive, send)

    def problem(self, request: Request) -> str | None:
        host = request.headers.get("host", "")
        if host not in self.hosts:
            return f"unexpected Host header {host!r}"
        if self.token is not None and request.url.path.startswith("/api/"):  # the page and its assets are public
            given = request.query_params.get("token") or request.headers.get("x-review-token") or ""
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return "missing or wrong token (use the URL the server printed)"
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and origin != f"http://{host}":
                return f"cross-origin request refused (Origin {origin!r})"
            if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
                return "cross-site request refused"
            if not request.headers.get("content-type", "").startswith("application/json"):
                return "state-changing requests must be JSON"
        return None


async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=_headers())


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store"}


def _state(request: Request) -> Response:
    state: ReviewState = request.app.state.review
    with state.lock:
        labels = {i: state.label_view(i) for i in state.ids if i in state.labels}
        body = {"file": state.path.name, "feedback": state.feedback.name, "total": len(state.records),
                "reviewed": state.reviewed(), "first_unreviewed": state.first_unreviewed(),
                "records": [state.record_view(n, r) for n, r in enumerate(state.records)], "labels": labels}
    return JSONResponse(body, headers=_headers())


async def _action(request: Request) -> Response:
    state: ReviewState = request.app.state.review
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "body is not JSON"}, status_code=400)
    index = body.get("index") if isinstance(body, dict) else None
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(state.records):
        return JSONResponse({"error": "unknown record index"}, status_code=400)
    row = {"file": state.path.name, "index": index, "id": state.ids[index], "action": body.get("action")}
    for key in ("score", "output", "choice"):
        if key in body:
            row[key] = body[key]
    if row["action"] == "choose" and state.records[index].meta.get("output_b") is None:
        return JSONResponse({"error": "this record is not a pair"}, status_code=400)
    if state.reviewer:
        row["reviewer"] = state.reviewer
    with state.lock:
        try:
            written = append_feedback(state.feedback, row)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        apply(state.labels, written)
        return JSONResponse({"label": state.label_view(row["id"]), "reviewed": state.reviewed(),
                             "first_unreviewed": state.first_unreviewed()}, headers=_headers())


def make_app(path: str | os.PathLike[str], feedback: str | os.PathLike[str] | None = None, *,
             hosts: set[str] | None = None, token: str | None = None, reviewer: str | None = None) -> Starlette:
    """The review app for the records of ``path``; feedback goes to ``feedback`` (default: a
    ``feedback.jsonl`` beside ``path``). ``hosts``: the Host header values accepted."""
    path = Path(path)
    state = ReviewState(path, Path(feedback) if feedback else path.parent / "feedback.jsonl", reviewer)
    routes = [Route("/", _index), Route("/favicon.ico", lambda request: Response(status_code=204)), Route("/api/state", _state), Route("/api/action", _action, methods=["POST"]),
              Mount("/static", app=StaticFiles(directory=STATIC), name="static")]
    app = Starlette(routes=routes, middleware=[Middleware(Guard, hosts=hosts or set(), token=token)])
    app.state.review = state
    return app
