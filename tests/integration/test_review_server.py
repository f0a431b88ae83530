"""The review server's guards and API without a browser (Starlette's test client on the real app):
cross-origin and non-JSON state changes refused, the Host header checked, the token required on a
remote bind, bad actions refused without touching feedback.jsonl, and no bind beyond loopback without
--allow-remote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_cli
from starlette.testclient import TestClient

from sftdata.core.records import Record
from sftdata.review.server import make_app

RECORDS = [Record("One", output="1"), Record("Two", output="2", meta={"output_b": "two"})]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "records.jsonl"
    path.write_text("".join(r.to_json() + "\n" for r in RECORDS), encoding="utf-8")
    return path


def client(data: Path, token: str | None = None) -> TestClient:
    return TestClient(make_app(data, hosts={"testserver"}, token=token), base_url="http://testserver")


def lines(data: Path) -> list[dict]:
    path = data.parent / "feedback.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_actions_append_at_once_and_state_resumes(data: Path):
    c = client(data)
    state = c.get("/api/state").json()
    assert state["total"] == 2 and state["first_unreviewed"] == 0
    assert c.post("/api/action", json={"index": 0, "action": "keep"}).status_code == 200
    assert lines(data)[0]["action"] == "keep" and lines(data)[0]["id"] == RECORDS[0].id
    state = client(data).get("/api/state").json()  # a new server process reads the file
    assert state["first_unreviewed"] == 1 and state["labels"][RECORDS[0].id] == {"keep": True}
    page = c.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_bad_actions_are_refused_and_not_written(data: Path):
    c = client(data)
    assert c.post("/api/action", json={"index": 0, "action": "score", "score": 11}).status_code == 400
    assert c.post("/api/action", json={"index": 0, "action": "choose", "choice": "A"}).status_code == 400  # no pair
    assert c.post("/api/action", json={"index": 9, "action": "keep"}).status_code == 400
    assert c.post("/api/action", json={"index": 0, "action": "delete"}).status_code == 400
    assert lines(data) == []
    assert c.post("/api/action", json={"index": 1, "action": "choose", "choice": "tie"}).status_code == 200


def test_other_origins_and_forms_are_refused(data: Path):
    c = client(data)
    evil = c.post("/api/action", json={"index": 0, "action": "keep"}, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and "cross-origin" in evil.json()["error"]
    form = c.post("/api/action", data={"index": "0", "action": "keep"})
    assert form.status_code == 403
    site = c.post("/api/action", json={"index": 0, "action": "keep"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert site.status_code == 403
    rebound = c.get("/api/state", headers={"Host": "attacker.example:8765"})
    assert rebound.status_code == 403
    assert lines(data) == []
    same = c.post("/api/action", json={"index": 0, "action": "keep"}, headers={"Origin": "http://testserver"})
    assert same.status_code == 200


def test_token_required_when_set(data: Path):
    c = client(data, token="s3cret")
    assert c.get("/api/state").status_code == 403
    assert c.get("/api/state?token=wrong").status_code == 403
    assert c.get("/api/state", headers={"X-Review-Token": "s3cret"}).status_code == 200
    assert c.get("/").status_code == 200  # the page itself carries no data


def test_remote_bind_needs_the_flag(data: Path, capsys):
    code, _, err = run_cli(["review", str(data), "--host", "0.0.0.0"], capsys)
    assert code == 2 and "--allow-remote" in err
    code, _, err = run_cli(["review", str(data.parent / "missing.jsonl")], capsys)
    assert code == 2 and "missing.jsonl" in err
