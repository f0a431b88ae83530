"""The export_model stage: a tuned model as a GGUF for llama.cpp / Ollama / LM Studio, or merged safetensors.

    gguf_writer.py  HF Llama-family directory -> GGUF (hyperparameters, tensors, in-process quantization)
    gguf_vocab.py   the tokenizer keys (gpt2 BPE vocab, merges, token types, special ids, chat template)
    ollama.py       Modelfile (template, stop tokens, parameters) and USAGE.md
    verify.py       the GGUF read back through transformers vs the merged model
    stage.py        export_model(): merge, write, verify; the ``sftdata run`` stage function
    config.py       ExportModelConfig (no torch)

Importing this package stays cheap: torch, transformers and gguf load inside the functions.
"""

from ..core.stage import StageResult, StageSpec
from .config import ExportModelConfig


def _run(ctx, config: ExportModelConfig) -> StageResult:
    from .stage import run_stage

    return run_stage(ctx, config)


SPEC = StageSpec(name="export_model", config=ExportModelConfig, run=_run,
                 help="export the fine-tuned model as GGUF (q8_0 by default) with an Ollama Modelfile",
                 produces_data=False, reads=("finetune",), enabled_by_default=False,
                 summary_keys=("agreement", "perplexity", "seconds"))
