"""Read the written GGUF back through transformers and compare it with the merged model.

On the same held-out records, teacher-forced: perplexity of the reference replies, and greedy
top-1 agreement (the share of reply positions where the GGUF's most likely next token is the
merged model's). Also the file size, the load time and greedy-decoding tokens/s through
transformers, which dequantizes a GGUF to float32 on load: its tokens/s measure transformers, not
llama.cpp, and its quality figures are exactly what the quantized weights carry.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.records import Record

DEFAULT_PROMPTS = Path(__file__).resolve().parent.parent / "data" / "verify_prompts_en.jsonl"


@dataclass
class Reference:
    """The merged model's greedy choices per batch, kept to score the GGUF models against."""
    batches: list[list[int]]
    argmax: list[Any] = field(default_factory=list)


def load_gguf(path: str | Path, dtype: Any = None) -> tuple[Any, Any]:
    """A GGUF file as a transformers model (dequantized) and its tokenizer, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype or torch.float32)
    return model.eval(), tokenizer


def _examples(tokenizer: Any, records: list[Record], max_len: int) -> list[Any]:
    from ..finetune.data import ExampleDropped, tokenize_example

    out = []
    for rec in records:
        try:
            out.append(tokenize_example(tokenizer, rec, max_len))
        except ExampleDropped:
            continue
    return out


def score(model: Any, examples: list[Any], pad_id: int, batch_size: int,
          reference: Reference | None) -> dict[str, float]:
    """Perplexity on the reply tokens; agreement with ``reference`` (filled in when it is empty)."""
    import math

    import torch
    import torch.nn.functional as F

    from ..finetune.batching import collate
    from ..finetune.data import IGNORE

    nll, tokens, same = 0.0, 0, 0
    record_argmax = reference is not None and not reference.argmax
    with torch.inference_mode():
        for index, batch in enumerate(reference.batches if reference else []):
            tensors = collate(examples, [[i] for i in batch], pad_id, packed=False)
            logits = model(input_ids=tensors.input_ids, attention_mask=tensors.attention_mask).logits
            keep = tensors.targets != IGNORE
            picked = logits[keep].float()
            nll += F.cross_entropy(picked, tensors.targets[keep], reduction="sum").item()
            tokens += int(keep.sum())
            top1 = picked.argmax(-1)
            if record_argmax:
                reference.argmax.append(top1)
            else:
                same += int((top1 == reference.argmax[index]).sum())
    loss = nll / max(tokens, 1)
    return {"perplexity": math.exp(min(loss, 50.0)), "agreement": 1.0 if record_argmax else same / max(tokens, 1),
            "tokens": tokens}


def tokens_per_second(model: Any, tokenizer: Any, records: list[Record], new_tokens: int) -> float:
    """Greedy decoding speed, batch 1, a fixed number of new tokens per prompt."""
    import torch

    from ..finetune.data import render_prompt_ids

    total, seconds = 0, 0.0
    with torch.inference_mode():
        for rec in records:
            ids = torch.tensor([render_prompt_ids(tokenizer, rec)])
            started = time.perf_counter()
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            seconds += time.perf_counter() - started
            total += out.shape[1] - ids.shape[1]
    return total / seconds if seconds else 0.0


def verify(merged_dir: str | Path, ggufs: dict[str, Path], records: list[Record], max_len: int = 512,
           batch_size: int = 4, speed_prompts: int = 2, new_tokens: int = 24,
           log: Any = None, reference_dtype: Any = None) -> list[dict[str, Any]]:
    """One row per model: the merged HF model first (the reference, float32 unless
    ``reference_dtype``; its size is its weights' bytes in that dtype), then each GGUF."""
    import torch

    from ..llm.local.embedded import load_model_and_tokenizer

    started = time.perf_counter()
    model, tokenizer = load_model_and_tokenizer(str(merged_dir), dtype=reference_dtype or torch.float32)
    load_s = time.perf_counter() - started
    examples = _examples(tokenizer, records, max_len)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    reference = Reference([order[i:i + batch_size] for i in range(0, len(order), batch_size)])
    pad = tokenizer.pad_token_id
    speed_records = records[:speed_prompts]
    rows = [{"format": f"hf ({str(next(model.parameters()).dtype).replace('torch.', '')})",
             "file": str(merged_dir), "load_s": load_s,
             "bytes": sum(p.numel() * p.element_size() for p in model.parameters()),  # tied: counted once
             **score(model, examples, pad, batch_size, reference),
             "tokens_per_s": tokens_per_second(model, tokenizer, speed_records, new_tokens)}]
    del model
    gc.collect()
    for label, path in ggufs.items():
        if log:
            log(f"verifying {path.name}")
        started = time.perf_counter()
        model, gguf_tokenizer = load_gguf(path)
        load_s = time.perf_counter() - started
        rows.append({"format": f"gguf {label}", "file": str(path), "bytes": path.stat().st_size, "load_s": load_s,
                     "tokenizer_match": _same_ids(tokenizer, gguf_tokenizer, records),
                     **score(model, examples, pad, batch_size, reference),
                     "tokens_per_s": tokens_per_second(model, gguf_tokenizer, speed_records, new_tokens)})
        del model
        gc.collect()
    return rows


def _same_ids(tokenizer: Any, other: Any, records: list[Record]) -> float:
    """Share of held-out prompts the GGUF's tokenizer encodes to the same ids as the merged model's."""
    from ..finetune.data import render_prompt_ids

    same = sum(render_prompt_ids(tokenizer, r) == render_prompt_ids(other, r) for r in records)
    return same / max(len(records), 1)


def render_rows(rows: list[dict[str, Any]]) -> str:
    header = ["format", "size MB", "perplexity", "agreement", "load s", "tokens/s"]
    lines = [[r["format"], f"{r['bytes'] / 2**20:.1f}", f"{r['perplexity']:.3f}", f"{r['agreement']:.3f}",
              f"{r['load_s']:.1f}", f"{r['tokens_per_s']:.1f}"] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*header), *(fmt.format(*line) for line in lines)])
