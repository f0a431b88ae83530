"""The filter on a 2-node local Ray cluster (``--ray``, 2 shards) against one process, same input.

Data: bench/dedup.py's synthetic instructions (Zipf-like vocabulary, ~10% near-duplicates), each a
record with an output, all rules on (langdetect's language rule included: with ``--lang en``).
Timed span: run_filter end to end (read, filter, write) on both sides; the cluster is started
before the clock (ray.cluster_utils.Cluster: two raylets of 1 CPU each on this machine).
Prints one line: seconds of each, the ratio, and how many records each kept (the sharded kept set
is pairwise novel too but may be slightly smaller: docs/cluster.md, "Semantics").

Then the blocking (``--rouge-blocking lsh``) against the exact index on ``--recall-n`` instructions
of the same generator: CPU seconds of each in one process, wall seconds of the LSH candidate search
on the cluster (sftdata.cluster.dedup), the recall (of the instructions the exact filter drops, the
share LSH drops too) and the residual (pairs above the threshold left among LSH's kept texts, found by
running the exact index over them). One line:

    python bench/cluster.py --n 20000 --recall-n 1000000   # --n 0: the blocking line only
    python bench/cluster.py --n 0 --no-cluster-lsh --recall-n 1000000   # one process, no Ray
"""

from __future__ import annotations

import argparse
import functools
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from dedup import make_instructions  # noqa: E402

from sftdata.core.records import Record, write_jsonl  # noqa: E402
from sftdata.filter.config import FilterConfig  # noqa: E402
from sftdata.filter.stage import run_filter  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--recall-n", type=int, default=100_000, help="instructions for the blocking recall (0: skip)")
    parser.add_argument("--bands", type=int, default=None)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--no-cluster-lsh", action="store_true",
                        help="skip the blocking's cluster leg (at 1M: one Ray cluster less in memory)")
    args = parser.parse_args()
    if not args.n and args.no_cluster_lsh:  # the blocking line in one process: no cluster to start
        blocking(None, args)
        return 0
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(args.nodes - 1):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    ray.get([ray.remote(lambda: 0).remote() for _ in range(args.nodes)])  # workers up before the clock
    try:
        if args.n:  # --n 0: the blocking line only
            filter_line(args)
        if args.recall_n:
            blocking(ray, args)
    finally:
        ray.shutdown()
        cluster.shutdown()
    return 0


def filter_line(args: argparse.Namespace) -> None:
    """The filter, one process vs sharded on the cluster (exact mode), same input."""
    from sftdata.cluster.filter import sharded_filter_records

    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.jsonl"
        write_jsonl(inp, (Record(text, output="An answer.") for text in make_instructions(args.n)))
        config = FilterConfig(lang="en")
        started = time.perf_counter()
        single = run_filter([inp], Path(tmp) / "one", config)
        one_s = time.perf_counter() - started
        engine = functools.partial(sharded_filter_records, address="auto", shards=args.nodes)
        started = time.perf_counter()
        sharded = run_filter([inp], Path(tmp) / "ray", config, engine=engine)
        ray_s = time.perf_counter() - started
    print(f"cluster filter N={args.n}: {args.nodes}-node local Ray {ray_s:.1f}s vs one process {one_s:.1f}s: "
          f"{one_s / ray_s:.2f}x; kept {sharded['accepted']} vs {single['accepted']}", flush=True)


def blocking(ray: object, args: argparse.Namespace) -> None:
    """Exact vs LSH on the same instructions: time, recall, residual near-duplicates."""
    from sftdata.cluster.dedup import ray_mapper
    from sftdata.filter.lsh import EdgeIndex, lsh_pairs
    from sftdata.filter.rouge import RougeIndex

    texts = list(dict.fromkeys(make_instructions(args.recall_n)))  # distinct, as the filter checks them
    config = FilterConfig(rouge_blocking="lsh", **{k: v for k, v in (("lsh_bands", args.bands),
                                                                        ("lsh_rows", args.rows)) if v})
    started = time.process_time()
    exact = [m.novel for m in RougeIndex("auto", 0.7).check_and_add_many(texts)]
    exact_s = time.process_time() - started
    started = time.process_time()  # what `filter --rouge-blocking lsh` does in one process
    pairs = lsh_pairs(texts, config)
    lsh = [m.novel for m in EdgeIndex(texts, 0, pairs, 0.7).check_and_add_many(texts)]
    lsh_s = time.process_time() - started
    cluster = "not run"
    if not args.no_cluster_lsh:
        started = time.perf_counter()
        replay = EdgeIndex(texts, 0, lsh_pairs(texts, config, ray_mapper(ray), args.nodes), 0.7)
        same = [m.novel for m in replay.check_and_add_many(texts)] == lsh
        cluster = f"{time.perf_counter() - started:.1f} s wall (same decisions: {same})"
    dropped = {i for i, novel in enumerate(exact) if not novel}
    caught = sum(1 for i in dropped if not lsh[i])
    kept = [text for text, novel in zip(texts, lsh) if novel]
    residual = sum(1 for m in RougeIndex("auto", 0.7).check_and_add_many(kept) if not m.novel)
    print(f"blocking N={len(texts)} (bands {config.lsh_bands} x rows {config.lsh_rows}): exact index "
          f"{exact_s:.1f} CPU s, LSH {lsh_s:.1f} CPU s ({exact_s / lsh_s:.2f}x), LSH on the {args.nodes}-node "
          f"cluster {cluster}; recall {caught / len(dropped):.4f} "
          f"({caught}/{len(dropped)}), LSH dropped {sum(not n for n in lsh)}, residual pairs above 0.7 among "
          f"LSH's {len(kept)} kept: {residual} ({residual / len(kept):.4%}); {len(pairs)} verified pairs above 0.7; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
