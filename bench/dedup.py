"""ROUGE-L novelty filtering: sftdata's RougeIndex against the Alpaca-style scan, in one run.

The scan is Stanford Alpaca's loop (one process): tokenize the candidate with rouge-score's
tokenizer, score it with ``rouge_scorer._score_lcs`` against every kept instruction, take the top
10, drop it when the best F-measure is above 0.7. The index must make the same decisions.

Data: synthetic instructions of 8-30 words over a Zipf-like vocabulary (real English function
words on top, then made-up content words), an imperative opening, and about 10% near-duplicates
of earlier ones (1-3 words substituted, inserted, deleted or swapped).

Prints, for N = 2000 and 4000: seconds of the scan and of the index, whether the decisions are
identical, and the ratio (of CPU seconds of this process, so that other load on the machine does
not skew it; wall seconds are printed too); then the index alone at N = 16k, 64k, 128k, 256k (1M with --full) with
seconds and how time grows with N; and one summary line:

    dedup: index Xs vs Alpaca scan Ys at N=4000 (identical decisions): Zx faster; 128k in Ts

Targets (2-core machine): identical decisions, >= 1000x at N=4000, 128k < 15 s, 1M < 10 min.
The scan at N=4000 takes minutes; that is the point. ``--quick``: N = 500, 1000 and 16k, 64k.
``--min-ratio R`` makes the script exit 1 when the ratio at the largest scan size is below R.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from rouge_score import rouge_scorer  # noqa: E402
from summary import record  # noqa: E402

from sftdata.filter.rouge import RougeIndex  # noqa: E402

THRESHOLD = 0.7
FUNCTION_WORDS = ("the a of to and in for on with that is be as by this from or an at it are your how what "
                  "which about into its their can should will more most each one two three five use using "
                  "between than all new short simple given following list ways").split()
OPENINGS = ["Write", "Explain", "Describe", "List", "Summarize", "Create", "Give", "Compare", "Suggest",
            "Generate", "Classify", "Rewrite", "Translate", "Find", "Outline", "Design", "Analyze", "Propose"]
SYLLABLES = ["ka", "lo", "mi", "ren", "tos", "va", "qui", "der", "an", "sel", "por", "ti", "ma", "gen",
             "ul", "fa", "ro", "ne", "sha", "bi", "cor", "dan", "e", "pli", "zu", "ton", "wex", "ha"]


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words = list(FUNCTION_WORDS)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def make_instructions(n: int, seed: int = 0, vocab_size: int = 50_000, near_dup: float = 0.10) -> list[str]:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    words = vocabulary(vocab_size, rng)
    weights = 1.0 / np.arange(1, vocab_size + 1) ** 1.07  # Zipf-like ranks
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    texts: list[str] = []
    for _ in range(n):
        if texts and rng.random() < near_dup:
            tokens = rng.choice(texts).split()
            for _ in range(rng.randint(1, 3)):
                op, pos = rng.random(), rng.randrange(len(tokens))
                word = words[int(np.searchsorted(cdf, rng.random()))]
                if op < 0.4:
                    tokens[pos] = word
                elif op < 0.65:
                    tokens.insert(pos, word)
                elif op < 0.85 and len(tokens) > 8:
                    del tokens[pos]
                else:
                    other = rng.randrange(len(tokens))
                    tokens[pos], tokens[other] = tokens[other], tokens[pos]
            texts.append(" ".join(tokens))
        else:
            length = rng.randint(8, 30)
            body = [words[i] for i in np.searchsorted(cdf, nrng.random(length - 1))]
            texts.append(" ".join([rng.choice(OPENINGS), *body]) + rng.choice([".", ".", "?", ""]))
    return texts


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.cpu:.4g}s cpu ({self.wall:.4g}s wall)"


def alpaca_scan(texts: list[str]) -> tuple[list[bool], Clock]:
    """Stanford Alpaca's filter, one process: every candidate against every kept instruction."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    kept_tokens: list[list[str]] = []
    kept: list[str] = []
    decisions = []
    with Clock() as clock:
        for text in texts:
            tokens = scorer._tokenizer.tokenize(text)
            scores = [rouge_scorer._score_lcs(tokens, other).fmeasure for other in kept_tokens]
            if scores:
                _most_similar = {kept[i]: scores[i] for i in np.argsort(scores)[-10:][::-1]}
            novel = not (scores and max(scores) > THRESHOLD)
            decisions.append(novel)
            if novel:
                kept_tokens.append(tokens)
                kept.append(text)
    return decisions, clock


def index_run(texts: list[str]) -> tuple[list[bool], Clock, dict]:
    """The filter stage's path: one call into the compiled loop for all texts (same decisions as one by one)."""
    index = RougeIndex("rouge", THRESHOLD)
    with Clock() as clock:
        matches = index.check_and_add_many(texts)
    return [m.novel for m in matches], clock, index.stats


def index_one_by_one(texts: list[str]) -> Clock:
    index = RougeIndex("rouge", THRESHOLD)
    with Clock() as clock:
        for text in texts:
            index.check_and_add(text)
    return clock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 500, 1000 for the scan; 16k, 64k for the index")
    parser.add_argument("--full", action="store_true", help="also the index at N = 1M")
    parser.add_argument("--min-ratio", type=float, default=0.0)
    args = parser.parse_args()
    scan_sizes = [500, 1000] if args.quick else [2000, 4000]
    index_sizes = [16_000, 64_000] if args.quick else [16_000, 64_000, 128_000, 256_000]
    if args.full:
        index_sizes.append(1_000_000)

    print(f"# {os.cpu_count()} CPUs, python {sys.version.split()[0]}; threshold {THRESHOLD}, rouge-score tokenizer")
    started = time.perf_counter()
    warm = RougeIndex("rouge")  # compiles or loads every kernel: check, add, re-rank, grow
    warm.check_and_add_many(make_instructions(300, seed=99))
    warm.check("warm up")
    print(f"# compiled kernels ready in {time.perf_counter() - started:.2f}s (numba cache; not counted below)")
    texts = make_instructions(max(max(scan_sizes), max(index_sizes)))

    identical_all = True
    ratio = math.nan
    for n in scan_sizes:
        sample = texts[:n]
        scan_decisions, scan = alpaca_scan(sample)
        index_decisions, index, stats = index_run(sample)
        single = index_one_by_one(sample)
        identical = scan_decisions == index_decisions
        identical_all &= identical
        ratio = scan.cpu / index.cpu
        print(f"N={n}: scan {scan}, index {index} (one call per text: {single}); kept {sum(index_decisions)}/{n}; "
              f"identical decisions: {identical}; ratio {ratio:,.0f}x ({scan.cpu / single.cpu:,.0f}x one by one); "
              f"pairs scored {stats['pairs_scored']} of the scan's {sum(range(sum(index_decisions)))}")
    previous = None
    at_128k = math.nan
    for n in index_sizes:
        _, clock, stats = index_run(texts[:n])
        growth = ""
        if previous is not None:
            exponent = math.log(clock.cpu / previous[1]) / math.log(n / previous[0])
            growth = f"; x{clock.cpu / previous[1]:.2f} for x{n / previous[0]:.0f} texts (time ~ N^{exponent:.2f})"
        print(f"index N={n}: {clock}, kept {stats['texts']}, postings scanned {stats['postings_scanned']}, "
              f"pairs scored {stats['pairs_scored']}{growth}")
        previous = (n, clock.cpu)
        if n == 128_000:
            at_128k = clock.cpu
    n_scan = scan_sizes[-1]
    line = (f"dedup: index vs Alpaca scan at N={n_scan} ({'identical' if identical_all else 'DIFFERENT'} decisions): "
            f"{ratio:,.0f}x faster")
    if not math.isnan(at_128k):
        line += f"; index 128k in {at_128k:.1f}s cpu"
    print(line)
    record("dedup", "Alpaca's rouge-score scan", f"CPU s at N={n_scan}", ratio if identical_all else 0.0, 1000.0,
           "identical decisions" if identical_all else "DIFFERENT decisions")
    return 0 if identical_all and ratio >= args.min_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
