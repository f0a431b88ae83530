"""The Ollama ``Modelfile`` and a usage note written beside an exported GGUF.

Ollama's TEMPLATE is a Go template, not the model's Jinja chat template, so it is written per chat
format: ChatML (``<|im_start|>`` / ``<|im_end|>``: SmolLM2, Qwen2) and Llama 3
(``<|start_header_id|>`` / ``<|eot_id|>``). The stop tokens end a turn in that format, and a
default system prompt baked into the Jinja template (SmolLM2 has one) becomes SYSTEM. For another
format no TEMPLATE is written: Ollama then derives one from the GGUF's own chat template.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    '{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
    '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
    '<|im_start|>assistant\n'
)
LLAMA3_TEMPLATE = (
    '{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}'
    '{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}'
    '<|start_header_id|>assistant<|end_header_id|>\n\n'
)
FORMATS = {"chatml": (CHATML_TEMPLATE, ("<|im_end|>", "<|im_start|>")),
           "llama3": (LLAMA3_TEMPLATE, ("<|eot_id|>", "<|start_header_id|>"))}


def chat_format(chat_template: str | None) -> str | None:
    if not chat_template:
        return None
    if "<|im_start|>" in chat_template:
        return "chatml"
    if "<|start_header_id|>" in chat_template:
        return "llama3"
    return None


def default_system_prompt(chat_template: str | None) -> str | None:
    """The system prompt a ChatML Jinja template inserts when the conversation has none."""
    found = re.search(r"<\|im_start\|>system(?:\n|\\n)(.+?)<\|im_end\|>", chat_template or "")
    return found.group(1).replace("\\n", "\n") if found and "{{" not in found.group(1) else None


def modelfile(gguf_name: str, chat_template: str | None, context_length: int,
              generation: dict[str, Any]) -> str:
    lines = [f"FROM ./{gguf_name}", ""]
    fmt = chat_format(chat_template)
    if fmt:
        template, stops = FORMATS[fmt]
        lines.append(f'TEMPLATE """{template}"""')
        system = default_system_prompt(chat_template)
        if system:
            lines.append(f'SYSTEM """{system}"""')
        lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    else:
        lines.append("# chat format not recognised: Ollama uses the GGUF's own chat template")
    lines.append(f"PARAMETER num_ctx {min(context_length, 4096)}")
    for key in ("temperature", "top_p", "top_k", "repeat_penalty"):
        if generation.get(key) is not None:
            lines.append(f"PARAMETER {key} {generation[key]}")
    return "\n".join(lines) + "\n"


def usage(name: str, gguf_name: str) -> str:
    return f"""# {name}

`{gguf_name}` runs in llama.cpp, Ollama and LM Studio.

    # Ollama (the Modelfile in this folder sets the chat template and stop tokens)
    ollama create {name} -f Modelfile
    ollama run {name} "Name three primary colors."

    # llama.cpp
    llama-cli -m {gguf_name} -cnv
    llama-server -m {gguf_name} --port 8080     # OpenAI-compatible: sftdata --base-url http://localhost:8080/v1

    # sftdata's local engine (dequantized once, cached under $SFTDATA_HOME/models/gguf)
    sftdata llm chat "Name three primary colors." --model {gguf_name}

    # transformers (dequantizes on load)
    AutoModelForCausalLM.from_pretrained(".", gguf_file="{gguf_name}")

    # LM Studio: copy {gguf_name} into its models folder, or `lms import {gguf_name}`

Other quantizations (q4_k_m, q5_k_m, q6_k, iq4_xs...): export --quant f16, then
`llama-quantize {name}.f16.gguf {name}.q4_k_m.gguf Q4_K_M` with llama.cpp.
"""


def write_ollama_files(out: Path, name: str, gguf_file: Path, chat_template: str | None, context_length: int,
                       generation: dict[str, Any]) -> dict[str, str]:
    (out / "Modelfile").write_text(modelfile(gguf_file.name, chat_template, context_length, generation),
                                   encoding="utf-8")
    (out / "USAGE.md").write_text(usage(name, gguf_file.name), encoding="utf-8")
    return {"modelfile": str(out / "Modelfile"), "usage": str(out / "USAGE.md")}
