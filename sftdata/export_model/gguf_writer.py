"""Write a merged HF model directory as a GGUF file that llama.cpp, Ollama and LM Studio load.

What llama.cpp reads, written with the ``gguf`` package (the same library its converter uses):
the architecture's hyperparameters under ``<arch>.*``, the tokenizer under ``tokenizer.ggml.*``
(see :mod:`.gguf_vocab`), the chat template, and the tensors under llama.cpp's names
(``gguf.get_tensor_name_map``). Llama's q/k projections are stored permuted (llama.cpp's rotary
embedding pairs neighbouring dimensions, transformers' pairs the two halves); transformers' GGUF
loader reverses the permutation on load. Qwen2 keeps the HF layout (llama.cpp runs it with NEOX rope).

Quantization happens here, in process (``gguf.quants``): f32, f16, bf16, q8_0 and q4_0. As
llama.cpp does, 1-D tensors (norms, biases) stay f32, a matrix whose rows do not split into
32-value blocks falls back to f16, and under q4_0 the token embedding (also the output layer when
tied) and the output layer stay q8_0: 4 bits there cost the most quality for the least size.
K-quants and i-quants (q4_k_m, q5_k_m, q6_k, iq4_xs...) need llama.cpp's ``llama-quantize``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError

QUANTS = ("f32", "f16", "bf16", "q8_0", "q4_0")


@dataclass(frozen=True)
class ArchSpec:
    gguf_arch: str  # llama.cpp's architecture name (general.architecture)
    permute_qk: bool  # llama.cpp's Llama rope layout: q/k rows interleaved per head


ARCHITECTURES = {
    "LlamaForCausalLM": ArchSpec("llama", permute_qk=True),  # Llama 1-3, SmolLM / SmolLM2, TinyLlama
    "Qwen2ForCausalLM": ArchSpec("qwen2", permute_qk=False),  # Qwen1.5 / Qwen2 / Qwen2.5
}


def arch_spec(config: dict[str, Any]) -> ArchSpec:
    names = config.get("architectures") or [config.get("model_type", "?")]
    spec = ARCHITECTURES.get(names[0])
    if spec is None:
        raise ConfigError(f"cannot write GGUF for architecture {names[0]}: this exporter maps the Llama "
                          f"family ({', '.join(ARCHITECTURES)}); convert it with llama.cpp's "
                          "convert_hf_to_gguf.py, or export --format hf", "--format")
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    if rope_type not in ("default", "linear"):
        raise ConfigError(f"{names[0]} with {rope_type} rope scaling is not supported by this exporter; "
                          "use llama.cpp's convert_hf_to_gguf.py", "--format")
    return spec


def _types(quant: str) -> tuple[Any, Any]:
    """(tensor type for matrices, general.file_type) of a --quant choice."""
    from gguf import GGMLQuantizationType as Q
    from gguf import LlamaFileType as F

    table = {"f32": (Q.F32, F.ALL_F32), "f16": (Q.F16, F.MOSTLY_F16), "bf16": (Q.BF16, F.MOSTLY_BF16),
             "q8_0": (Q.Q8_0, F.MOSTLY_Q8_0), "q4_0": (Q.Q4_0, F.MOSTLY_Q4_0)}
    if quant not in table:
        raise ConfigError(f"unknown quantization {quant!r}: choose from {', '.join(QUANTS)} (others: "
                          "llama.cpp's llama-quantize on an f16 GGUF)", "--quant")
    return table[quant]


def permute_for_llama_cpp(weights: Any, n_head: int) -> Any:
    """Interleave the two rotary halves of each head's rows, as llama.cpp's Llama expects."""
    rows = weights.shape[0]
    return (weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def read_state_dict(model_dir: Path) -> dict[str, Any]:
    """Every tensor of the model's safetensors file(s), as float32 numpy arrays."""
    from safetensors.torch import load_file

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ConfigError(f"{model_dir}: no *.safetensors weights to export", "ADAPTER_OR_MODEL")
    tensors: dict[str, Any] = {}
    for file in files:
        for name, tensor in load_file(str(file)).items():
            tensors[name] = tensor.float().numpy()
    return tensors


def tensor_type(gguf_name: str, array: Any, matrix_type: Any) -> Any:
    """The type one tensor is stored in under the chosen quantization (see the module docstring)."""
    from gguf import GGMLQuantizationType as Q

    if array.ndim < 2:
        return Q.F32
    if matrix_type in (Q.Q8_0, Q.Q4_0) and array.shape[-1] % 32:
        return Q.F16
    if matrix_type == Q.Q4_0 and gguf_name in ("token_embd.weight", "output.weight"):
        return Q.Q8_0
    return matrix_type


def encode(array: Any, qtype: Any) -> tuple[Any, Any]:
    """(data, raw_dtype) for GGUFWriter.add_tensor."""
    import numpy as np
    from gguf import GGMLQuantizationType as Q
    from gguf import quants

    if qtype == Q.F32:
        return np.ascontiguousarray(array, dtype=np.float32), None
    if qtype == Q.F16:
        return np.ascontiguousarray(array, dtype=np.float16), None
    return quants.quantize(np.ascontiguousarray(array, dtype=np.float32), qtype), qtype


def gguf_tensors(config: dict[str, Any], state: dict[str, Any], quant: str) -> list[tuple[str, Any, Any]]:
    """(llama.cpp name, data, raw dtype) for each tensor to write, in the model's order."""
    import gguf

    spec = arch_spec(config)
    arch = next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == spec.gguf_arch)
    names = gguf.get_tensor_name_map(arch, config["num_hidden_layers"])
    matrix_type, _ = _types(quant)
    n_head, n_kv = config["num_attention_heads"], config.get("num_key_value_heads") or config["num_attention_heads"]
    tied = config.get("tie_word_embeddings", False)
    out = []
    for hf_name, array in state.items():
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue  # recomputed from rope theta; a tied output layer is the embedding
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ConfigError(f"tensor {hf_name} has no llama.cpp name for {spec.gguf_arch}; this model "
                              "differs from the Llama family layout", "ADAPTER_OR_MODEL")
        if spec.permute_qk and hf_name.endswith("q_proj.weight"):
            array = permute_for_llama_cpp(array, n_head)
        elif spec.permute_qk and hf_name.endswith("k_proj.weight"):
            array = permute_for_llama_cpp(array, n_kv)
        data, raw = encode(array, tensor_type(name, array, matrix_type))
        out.append((name, data, raw))
    return out


def add_hyperparameters(writer: Any, config: dict[str, Any], quant: str, name: str) -> None:
    import gguf

    _, file_type = _types(quant)
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    rope = config.get("rope_parameters") or {}
    writer.add_type("model")
    writer.add_name(name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads") or heads)
    writer.add_rope_freq_base(float(rope.get("rope_theta") or config.get("rope_theta") or 10000.0))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_vocab_size(config["vocab_size"])
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config["hidden_size"] // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    scaling = config.get("rope_scaling") or {}
    if (scaling.get("rope_type") or scaling.get("type")) == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(scaling["factor"]))
    writer.add_file_type(int(file_type))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def write_gguf(model_dir: str | Path, out_file: str | Path, quant: str = "q8_0",
               name: str | None = None) -> dict[str, Any]:
    """Write ``model_dir`` (a plain HF causal-LM directory) as ``out_file``; a summary of what went in."""
    import gguf

    from .gguf_vocab import add_tokenizer

    model_dir, out_file = Path(model_dir), Path(out_file)
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    spec = arch_spec(config)
    _types(quant)  # a bad --quant fails before the weights are read
    tensors = gguf_tensors(config, read_state_dict(model_dir), quant)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    partial = out_file.with_name(out_file.name + ".partial")  # never a half-written .gguf under its name
    writer = gguf.GGUFWriter(str(partial), spec.gguf_arch)
    add_hyperparameters(writer, config, quant, name or model_dir.name)
    vocab = add_tokenizer(writer, model_dir, config)
    for tensor_name, data, raw in tensors:
        writer.add_tensor(tensor_name, data, raw_dtype=raw)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out_file)
    return {"file": str(out_file), "architecture": spec.gguf_arch, "quant": quant, "tensors": len(tensors),
            "bytes": out_file.stat().st_size, **vocab}
