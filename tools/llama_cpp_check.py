"""Does llama.cpp read a GGUF written by ``sftdata finetune export`` the way transformers does?

Loads FILE.gguf in llama.cpp (node-llama-cpp's prebuilt CPU binary: llama.cpp has no binary wheel on
PyPI, and node-llama-cpp installs from npm with one command) and in transformers (dequantized), on
the packaged held-out prompts rendered with the file's own chat template, and compares:

- tokenization: the ids llama.cpp gives each chat-formatted prompt vs the HF tokenizer's;
- greedy continuations: tokens llama.cpp picks vs transformers on the same file's weights, or with
  ``--reference DIR`` on the float32 model it was written from (llama.cpp computes q8_0 with quantized
  activations, so late divergence is expected; an early one means a wrong tensor layout, rope or
  norm setting). llama.cpp runs on one thread: its spinning thread pool crawls on a shared machine.

    npm install --prefix /tmp/nllc node-llama-cpp@3      # once, about 700 MB
    python tools/llama_cpp_check.py out/model.q8_0.gguf --node-llama-cpp /tmp/nllc/node_modules/node-llama-cpp

Prints one line: ``llama_cpp_check FILE: tokenization a/n identical, greedy b/n identical for K
tokens, mean common prefix p tokens``; exit 1 when a tokenization differs or llama.cpp fails to load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def transformers_side(path: Path, prompts: int, new_tokens: int,
                      reference: Path | None) -> tuple[list[str], list[list[int]], list[list[int]]]:
    """(chat-formatted prompts, their HF ids, transformers' greedy continuation of each), from the
    GGUF dequantized, or from ``reference`` (the HF model the GGUF was written from)."""
    import torch

    from sftdata.eval.stage import load_eval_records
    from sftdata.export_model.verify import DEFAULT_PROMPTS, load_gguf
    from sftdata.llm.local.embedded import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(reference)) if reference else load_gguf(path)
    records, _ = load_eval_records([DEFAULT_PROMPTS], limit=prompts)
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": r.instruction}], tokenize=False,
                                           add_generation_prompt=True) for r in records]
    ids = [tokenizer(text, add_special_tokens=False).input_ids for text in texts]
    configured = model.generation_config.eos_token_id
    eos = {tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])} - {None}
    continuations = []
    with torch.no_grad():
        for prompt in ids:
            out = model.generate(torch.tensor([prompt]), max_new_tokens=new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)[0, len(prompt):].tolist()
            cut = next((i for i, t in enumerate(out) if t in eos), len(out))
            continuations.append(out[:cut])
    return texts, ids, continuations


def common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("--node-llama-cpp", type=Path, required=True, help="node_modules/node-llama-cpp")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--reference", type=Path, help="compare with this HF model directory (the one the "
                                                       "GGUF was written from) instead of the GGUF dequantized")
    args = parser.parse_args()
    texts, hf_ids, hf_greedy = transformers_side(args.gguf, args.prompts, args.new_tokens, args.reference)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(texts, f)
    proc = subprocess.run(["node", str(ROOT / "tools" / "llama_cpp_check.mjs"), str(args.node_llama_cpp),
                           str(args.gguf.resolve()), f.name, str(args.new_tokens)], capture_output=True, text=True)
    Path(f.name).unlink()
    if proc.returncode != 0:
        print(f"llama_cpp_check {args.gguf.name}: llama.cpp failed: {proc.stderr.strip()[-2000:]}")
        return 1
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    results = report["results"]
    same_ids = sum(r["ids"] == ids for r, ids in zip(results, hf_ids))
    same_greedy = sum(r["generated"] == g for r, g in zip(results, hf_greedy))
    prefix = sum(common_prefix(r["generated"], g) for r, g in zip(results, hf_greedy)) / len(results)
    for r, g in zip(results, hf_greedy):
        if r["generated"] != g:
            print(f"  differs after {common_prefix(r['generated'], g)} tokens: llama.cpp {r['text']!r}")
    print(f"llama_cpp_check {args.gguf.name}: arch {report['architecture']}, context {report['trainContextSize']}, "
          f"tokenization {same_ids}/{len(results)} identical, greedy {same_greedy}/{len(results)} identical for "
          f"{args.new_tokens} tokens, mean common prefix {prefix:.1f} tokens")
    return 0 if same_ids == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
