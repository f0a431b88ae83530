"""ExportModelConfig: the settings of ``sftdata finetune export`` and the ``export_model`` stage (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.settings import setting

FORMATS = ("gguf", "hf")
QUANTS = ("f32", "f16", "bf16", "q8_0", "q4_0")  # what gguf.quants writes in process (gguf_writer.QUANTS)


@dataclass
class ExportModelConfig:
    format: str = setting("gguf", choices=FORMATS,
                          help="gguf: one file for llama.cpp / Ollama / LM Studio; hf: merged safetensors.")
    quant: list[str] = setting(lambda: ["q8_0"], choices=QUANTS, metavar="TYPE",
                               help="GGUF tensor type(s): f16, bf16, q8_0, q4_0 (f32 too). K-quants (q4_k_m...) need llama.cpp's llama-quantize.")
    verify: bool = setting(True, flag="--verify/--no-verify", hashed=False,
                           help="Read each GGUF back through transformers and compare it with the merged "
                                "model: perplexity, top-1 agreement, load time, tokens/s.")
    eval_data: list[str] = setting(list, metavar="FILE", path=True,
                                   help="Held-out JSONL for the verification. Default: the adapter's "
                                        "eval.jsonl, else a packaged set of 24 general prompts.")
    verify_limit: int = setting(32, help="Verify on at most this many records.")
    name: str | None = setting(None, help="Model name for the GGUF metadata, file names and the Ollama "
                                          "snippet. Default: the adapter or model directory's name.")
    base_model: str | None = setting(None, metavar="DIR", path=True,
                                     help="Override the base model recorded in the adapter directory.")

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"choose one of {', '.join(FORMATS)}", "--format")
        bad = [q for q in self.quant if q not in QUANTS]
        if bad or not self.quant:
            raise ConfigError(f"unknown quantization {', '.join(bad) or '(none)'}: choose from "
                              f"{', '.join(QUANTS)}; q4_k_m and other K-quants need llama.cpp's llama-quantize",
                              "--quant")
        if self.verify_limit < 1:
            raise ConfigError("must be at least 1", "--verify-limit")
