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


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``pytest -n 2 --dist loadgroup`` (make test), the tests that load the embedded model run one
    after another on one worker while the other worker takes the rest: two model tests side by side
    would each get half of CI's two cores, and the light tests mostly wait on servers and children."""
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("embedded-model"))
