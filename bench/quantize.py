"""Size, perplexity, top-1 agreement and tokens/s of the embedded model in bf16 against its GGUF forms.

One run, same held-out records (the packaged verification prompts), same teacher-forced scoring and
the same greedy decoding for every row: the bf16 HF model is the peer a user would otherwise ship;
each GGUF (f16, q8_0, q4_0, written by ``sftdata finetune export``'s writer) is read back through
transformers, which dequantizes it, so its tokens/s measure transformers at float32, not llama.cpp.
Prints the table, then one line per quantized form with its size ratio to bf16:

    quantize q8_0: 138.1 MB vs bf16 256.6 MB (1.86x smaller), perplexity +0.4%, agreement 0.964
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from sftdata.eval.stage import load_eval_records  # noqa: E402
from sftdata.export_model.gguf_writer import write_gguf  # noqa: E402
from sftdata.export_model.verify import DEFAULT_PROMPTS, render_rows, verify  # noqa: E402
from sftdata.llm.local.embedded import embedded_model_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quant", default="f16,q8_0,q4_0", help="comma-separated GGUF types")
    parser.add_argument("--records", type=int, default=24, help="held-out records scored")
    parser.add_argument("--new-tokens", type=int, default=24, help="greedy tokens per speed prompt")
    args = parser.parse_args()
    model_dir = embedded_model_dir()
    records, _ = load_eval_records([DEFAULT_PROMPTS], limit=args.records)
    with tempfile.TemporaryDirectory() as tmp:
        ggufs = {q: Path(write_gguf(model_dir, Path(tmp) / f"smollm2.{q}.gguf", q)["file"])
                 for q in args.quant.split(",")}
        rows = verify(model_dir, ggufs, records, new_tokens=args.new_tokens, reference_dtype=torch.bfloat16)
    print(f"{len(records)} records, {torch.get_num_threads()} threads\n{render_rows(rows)}")
    base = rows[0]
    for row in rows[1:]:
        print(f"quantize {row['format'].split()[-1]}: {row['bytes'] / 2**20:.1f} MB vs bf16 "
              f"{base['bytes'] / 2**20:.1f} MB ({base['bytes'] / row['bytes']:.2f}x smaller), perplexity "
              f"{(row['perplexity'] / base['perplexity'] - 1) * 100:+.1f}%, agreement {row['agreement']:.3f}, "
              f"tokens/s {row['tokens_per_s'] / base['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
