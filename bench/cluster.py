"""The filter on a 2-node local Ray cluster (``--ray``, 2 shards) against one process, same input.

Data: bench/dedup.py's synthetic instructions (Zipf-like vocabulary, ~10% near-duplicates), each a
record with an output, all rules on (langdetect's language rule included: with ``--lang en``).
Timed span: run_filter end to end (read, filter, write) on both sides; the cluster is started
before the clock (ray.cluster_utils.Cluster: two raylets of 1 CPU each on this machine).
Prints one line: seconds of each, the ratio, and how many records each kept (the sharded kept set
is pairwise novel too but may be slightly smaller: docs/cluster.md, "Semantics").

    python bench/cluster.py --n 20000
"""

from __future__ import annotations

import argparse
import functools
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
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    from sftdata.cluster.filter import sharded_filter_records

    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.jsonl"
        write_jsonl(inp, (Record(text, output="An answer.") for text in make_instructions(args.n)))
        config = FilterConfig(lang="en")
        started = time.perf_counter()
        single = run_filter([inp], Path(tmp) / "one", config)
        one_s = time.perf_counter() - started

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False)
        ray.get([ray.remote(lambda: 0).remote() for _ in range(args.nodes)])  # workers up before the clock
        engine = functools.partial(sharded_filter_records, address="auto", shards=args.nodes)
        started = time.perf_counter()
        sharded = run_filter([inp], Path(tmp) / "ray", config, engine=engine)
        ray_s = time.perf_counter() - started
        ray.shutdown()
        cluster.shutdown()
    print(f"cluster filter N={args.n}: {args.nodes}-node local Ray {ray_s:.1f}s vs one process {one_s:.1f}s: "
          f"{one_s / ray_s:.2f}x; kept {sharded['accepted']} vs {single['accepted']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
