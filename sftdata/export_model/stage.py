"""``export_model``: merge an adapter into its base, write GGUF (or merged safetensors), verify it.

What ``--out`` holds::

    <name>.<quant>.gguf      one per --quant (format gguf)
    Modelfile, USAGE.md      Ollama / llama.cpp / LM Studio instructions, for the first GGUF
    hf/                      the merged model the GGUFs were written from (the folder itself for --format hf)
    export.json              the summary and the verification table
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.stage import StageResult
from .config import ExportModelConfig


def resolve_source(source: str | None, hf_dir: Path, base_model: str | None) -> tuple[Path, Path | None]:
    """(a plain HF model directory, the adapter directory when ``source`` was one).

    ``source``: a PEFT adapter (merged into its base under ``hf_dir``), a HF model directory, or
    None for the embedded model.
    """
    from ..llm.local.embedded import embedded_model_dir

    if source is None:
        return embedded_model_dir(), None
    path = Path(source)
    if (path / "adapter_config.json").is_file():
        from ..finetune.merge import merge_adapter

        merge_adapter(path, hf_dir, base_model=base_model)
        return hf_dir, path
    if (path / "config.json").is_file():
        return path, None
    raise ConfigError(f"{source}: neither a PEFT adapter (adapter_config.json) nor a HF model directory "
                      "(config.json)", "ADAPTER_OR_MODEL")


def verify_records(config: ExportModelConfig, adapter: Path | None) -> tuple[list[Any], list[str]]:
    from ..eval.stage import load_eval_records
    from .verify import DEFAULT_PROMPTS

    paths = list(config.eval_data)
    if not paths and adapter is not None and (adapter / "eval.jsonl").is_file():
        paths = [str(adapter / "eval.jsonl")]  # the held-out split fine-tuning kept
    paths = paths or [str(DEFAULT_PROMPTS)]
    records, _ = load_eval_records(paths, limit=config.verify_limit)
    if not records:
        raise ConfigError(f"no records with a reference reply in {', '.join(paths)}", "--eval-data")
    return records, paths


def _copy_model(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for file in src.iterdir():
        if file.is_file():
            shutil.copy2(file, dst / file.name)


def _generation(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "generation_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def export_model(source: str | None, out: str | Path, config: ExportModelConfig,
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Export ``source`` into ``out``; the summary written to ``export.json``."""
    from .gguf_writer import arch_spec, write_gguf
    from .ollama import write_ollama_files

    config.validate()
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hf_dir = out if config.format == "hf" else out / "hf"
    model_config = None
    if source is not None and (Path(source) / "config.json").is_file() and config.format == "gguf":
        model_config = json.loads((Path(source) / "config.json").read_text(encoding="utf-8"))
        arch_spec(model_config)  # an unsupported architecture fails before any work
    model_dir, adapter = resolve_source(source, hf_dir, config.base_model)
    if config.format == "hf" and model_dir != hf_dir:
        _copy_model(model_dir, hf_dir)
    name = config.name or (Path(source).name if source else model_dir.name)
    summary: dict[str, Any] = {"source": source or "embedded", "format": config.format,
                               "merged": str(hf_dir if config.format == "hf" or adapter else model_dir),
                               "files": [], "name": name}
    ggufs: dict[str, Path] = {}
    if config.format == "gguf":
        model_config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        for quant in config.quant:
            if log:
                log(f"writing {name}.{quant}.gguf")
            written = write_gguf(model_dir, out / f"{name}.{quant}.gguf", quant, name=name)
            ggufs[quant] = Path(written["file"])
            summary.setdefault("gguf", []).append(written)
            summary["files"].append(written["file"])
        from transformers import AutoTokenizer

        template = AutoTokenizer.from_pretrained(model_dir, local_files_only=True).chat_template
        first = next(iter(ggufs.values()))
        summary.update(write_ollama_files(out, name, first, template if isinstance(template, str) else None,
                                          model_config["max_position_embeddings"], _generation(model_dir)))
    if config.verify and ggufs:
        from .verify import render_rows, verify

        records, paths = verify_records(config, adapter)
        rows = verify(model_dir, ggufs, records, log=log)
        summary["verify"] = {"data": paths, "records": len(records), "rows": rows, "table": render_rows(rows)}
        summary["agreement"] = rows[1]["agreement"]
        summary["perplexity"] = rows[1]["perplexity"]
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / "export.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def run_stage(ctx: Any, config: ExportModelConfig) -> StageResult:
    """The ``sftdata run`` stage, after eval: export the adapter the finetune stage trained."""
    if ctx.output_of("finetune") is None:
        raise ConfigError("export_model needs the finetune stage (it exports the adapter it trained)",
                          "export_model")
    summary = export_model(str(ctx.run_dir / "finetune"), ctx.out, config, log=ctx.log)
    return StageResult(outputs=[Path(f) for f in summary["files"]] or [ctx.out], summary=summary)
