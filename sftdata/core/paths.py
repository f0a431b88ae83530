"""Where things live: the user cache (SFTDATA_HOME) and the prompts and seeds shipped with the package."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # sftdata/, above core/


def home() -> Path:
    """The user cache directory: ``$SFTDATA_HOME``, default ``~/.cache/sftdata``."""
    path = Path(os.environ.get("SFTDATA_HOME") or Path.home() / ".cache" / "sftdata")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _resource_dir(name: str) -> Path:
    # an installed wheel maps prompts/ and seeds/ into the package; a checkout has them at the top
    inside = _PACKAGE / name
    return inside if inside.is_dir() else _PACKAGE.parent / name


def prompts_dir() -> Path:
    return _resource_dir("prompts")


def seeds_dir() -> Path:
    return _resource_dir("seeds")


def prompt_path(lang: str, name: str) -> Path:
    """``prompts/<lang>/<name>.txt``; falls back to English when a language lacks the prompt."""
    for candidate in (prompts_dir() / lang / f"{name}.txt", prompts_dir() / "en" / f"{name}.txt"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no prompt '{name}' for language '{lang}' in {prompts_dir()}")


@lru_cache(maxsize=128)
def load_prompt(lang: str, name: str) -> str:
    """The prompt's text, read once per process: the files ship with the package."""
    return prompt_path(lang, name).read_text(encoding="utf-8")
