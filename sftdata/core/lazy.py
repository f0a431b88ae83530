"""Names of a package that load on first use (PEP 562), so importing the package stays cheap.

A stage package's ``__init__`` is imported by `sftdata --help`, `sftdata run --list-keys` and
`sftdata run CONFIG --dry-run` (through the registry) to read its ``SPEC``: its library functions, whose
modules bring the LLM client, compiled patterns or numerical code, come through here instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_names(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each of ``names`` is imported from its module (relative
    to the package, e.g. ``".api"``) when first asked for, then kept in the package's namespace."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(package)
        value = getattr(importlib.import_module(names[name], package), name)
        setattr(module, name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *names})

    return __getattr__, __dir__
