"""sftdata: grow, filter, clean, augment, judge and export instruction-tuning (SFT) datasets.

The Python API (docs/api.md) is the functions the CLI commands call, importable from here::

    import sftdata
    records = sftdata.read_all(["data.jsonl"])
    kept = [r for r, verdict in sftdata.filter_records(records, sftdata.FilterConfig()) if verdict is None]
    sftdata.export_records(kept, "out", ["messages"], license="apache-2.0")

Every name loads on first use (PEP 562), so ``import sftdata`` stays cheap: no torch, numpy or
openai until a function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute): one table, read by __getattr__, __dir__ and docs/api.md's test
_API: dict[str, tuple[str, str]] = {
    # records
    "Record": ("sftdata.core.records", "Record"),
    "read_records": ("sftdata.core.records", "read_records"),
    "read_all": ("sftdata.core.records", "read_all"),
    "write_jsonl": ("sftdata.core.records", "write_jsonl"),
    # settings (the same dataclasses the CLI options and `sftdata run` keys come from)
    "LLMConfig": ("sftdata.llm.config", "LLMConfig"),
    "GenerateConfig": ("sftdata.generate.config", "GenerateConfig"),
    "FilterConfig": ("sftdata.filter.config", "FilterConfig"),
    "CleanConfig": ("sftdata.clean.config", "CleanConfig"),
    "AugmentConfig": ("sftdata.augment.config", "AugmentConfig"),
    "ExportConfig": ("sftdata.export.config", "ExportConfig"),
    # stages on files (what `sftdata generate / filter / clean / augment` run)
    "run_generate": ("sftdata.generate.api", "generate"),
    "run_filter": ("sftdata.filter.stage", "run_filter"),
    "run_clean": ("sftdata.clean.stage", "run_clean"),
    "run_augment": ("sftdata.augment.api", "augment"),
    # stages on records in memory
    "filter_records": ("sftdata.filter.stage", "filter_records"),
    "clean_records": ("sftdata.clean.stage", "clean_records"),
    "export_records": ("sftdata.export.stage", "export"),
    "push_to_hub": ("sftdata.export.hub", "push_to_hub"),
    # the whole pipeline (`sftdata run CONFIG`)
    "load_pipeline": ("sftdata.pipeline", "load_pipeline"),
    "run_pipeline": ("sftdata.pipeline", "run_pipeline"),
    # errors (exit 2 / 3 on the command line)
    "ConfigError": ("sftdata.core.errors", "ConfigError"),
    "DataError": ("sftdata.core.errors", "DataError"),
    "EndpointUnavailable": ("sftdata.core.errors", "EndpointUnavailable"),
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'sftdata' has no attribute '{name}'")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
