from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from openai_server import OpenAIServer  # noqa: E402


@pytest.fixture
def server():
    srv = OpenAIServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def make_server():
    started: list[OpenAIServer] = []

    def make(**kwargs) -> OpenAIServer:
        srv = OpenAIServer(**kwargs).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()
