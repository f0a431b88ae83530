"""``sftdata export --push-to-hub``: huggingface_hub against a loopback server speaking the Hub API
(tests/hub_server.py; HF_ENDPOINT points at it): one commit with the card, dataset_info.json and the
chosen formats' files, never the hf/ or parquet/ copies; the token never reaches a file or the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hub_server import HubServer

from sftdata.core.records import Record, write_jsonl

TOKEN = "hf_loopbackSECRET0123456789"
RECORDS = [Record(f"Write a haiku about {t}.", "", f"A haiku about {t}.", lang="en")
           for t in ("rain", "snow", "wind", "sun", "fog", "hail", "dew", "frost", "mist", "storm")]


@pytest.fixture
def hub():
    server = HubServer().start()
    yield server
    server.stop()


def export(tmp_path: Path, hub: HubServer, *extra: str, token: str | None = TOKEN, offline: bool = False):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, RECORDS)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf_home"))  # no stored login from the machine
    if token:
        env["HF_TOKEN"] = token
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    args = ["export", str(data), "--out", str(tmp_path / "out"), *extra]
    return subprocess.run([sys.executable, "-c", "from sftdata.cli import main; main()", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_push_uploads_the_card_and_the_chosen_formats_once(tmp_path, hub):
    result = export(tmp_path, hub, "--format", "alpaca,messages", "--hf", "--license", "cc-by-4.0",
                    "--push-to-hub", "alice/haiku", "--private", "--json")
    assert result.returncode == 0, result.stderr
    repo = hub.repos["alice/haiku"]
    assert repo["type"] == "dataset" and repo["visibility"] == "private" and len(repo["commits"]) == 1
    out = tmp_path / "out"
    assert (out / "hf").is_dir() and (out / "parquet").is_dir()  # written locally, not uploaded
    card = (out / "README.md").read_bytes()
    expected = {"README.md", "dataset_info.json"} | {
        c["path"] for config in yaml.safe_load(card.decode().split("---\n")[1])["configs"]
        for c in config["data_files"]}
    assert set(repo["files"]) == expected and all(p.split("/")[0] in ("alpaca", "messages") for p in expected
                                                  if "/" in p)
    assert all(repo["files"][p] == (out / p).read_bytes() for p in expected)
    assert hub.tokens and set(hub.tokens) == {TOKEN} and hub.validated == [card.decode()]
    summary = json.loads(result.stdout)
    assert summary["hub"]["repo"] == "alice/haiku" and sorted(summary["hub"]["files"]) == sorted(expected)
    # the token is nowhere in what export wrote or printed
    assert TOKEN not in result.stdout + result.stderr
    assert not any(TOKEN.encode() in p.read_bytes() for p in out.rglob("*") if p.is_file())


def test_a_second_push_commits_to_the_existing_repo(tmp_path, hub):
    assert export(tmp_path, hub, "--push-to-hub", "alice/haiku").returncode == 0
    assert export(tmp_path, hub, "--push-to-hub", "alice/haiku").returncode == 0
    assert len(hub.repos["alice/haiku"]["commits"]) == 2 and hub.repos["alice/haiku"]["visibility"] == "public"


@pytest.mark.parametrize(("extra", "kwargs", "message"), [
    (["--push-to-hub", "not a repo"], {}, "--push-to-hub: 'not a repo' is not a Hub dataset name"),
    (["--push-to-hub", "alice/haiku"], {"token": None}, "--push-to-hub: the Hub refused the token (401)"),
    (["--push-to-hub", "alice/haiku"], {"offline": True}, "offline mode (HF_HUB_OFFLINE"),
])
def test_push_errors_are_clear_and_exit_2(tmp_path, hub, extra, kwargs, message):
    result = export(tmp_path, hub, *extra, **kwargs)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not hub.repos
