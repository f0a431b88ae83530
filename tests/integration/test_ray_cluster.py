"""``--ray``: the filter sharded on a real two-node Ray cluster (ray.cluster_utils.Cluster, one
machine), checked with rouge-score's own scorer; a worker killed mid-shard; byte-identical reruns;
and the single-machine path never importing ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sftdata.core.records import Record, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
KILLED_SHARD = "0001"  # every run's shard 1 dies once, mid-shard (the marker is per output directory)


def _records(count: int = 240) -> list[Record]:
    """Instructions with near-duplicates far apart (so in different shards), and a few rule failures."""
    verbs = ["Write", "Explain", "Summarize", "Describe", "List", "Compare"]
    topics = ["a poem about the sea", "how tides work", "the French revolution", "photosynthesis in plants",
              "the rules of chess", "a recipe for bread", "the water cycle", "binary search trees"]
    rows = []
    for i in range(count):
        verb, topic = verbs[i % len(verbs)], topics[(i // len(verbs)) % len(topics)]
        rows.append(Record(f"{verb} {topic} for reader number {i % 7} in simple words.", output=f"answer {i}"))
        if i % 40 == 0:
            rows.append(Record("Hi", output="too short"))
    return rows


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    os.environ["SFTDATA_TEST_KILL_SHARD"] = KILLED_SHARD  # inherited by the raylets' workers
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()
    os.environ.pop("SFTDATA_TEST_KILL_SHARD", None)


def _run(tmp_path: Path, name: str, shards: int) -> Path:
    from sftdata.cli import main

    inp = tmp_path / "in.jsonl"
    if not inp.exists():
        write_jsonl(inp, _records())
    out = tmp_path / name
    try:
        main(["filter", str(inp), "--out", str(out), "--ray", "auto", "--shards", str(shards), "--json"])
    except SystemExit as exc:
        assert not exc.code
    return out


def test_sharded_filter_is_novel_across_shards_and_survives_a_killed_worker(ray_cluster, tmp_path):
    from rouge_score import rouge_scorer

    out = _run(tmp_path, "a", shards=3)
    kept = [json.loads(line)["instruction"] for line in (out / "accepted.jsonl").open()]
    dropped = [json.loads(line) for line in (out / "rejected.jsonl").open()]
    assert len(kept) + len(dropped) == len(_records())  # nothing lost, nothing doubled
    assert {row["reason"] for row in dropped} >= {"rouge", "length"}
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    worst = max(scorer.score(a, b)["rougeL"].fmeasure for i, a in enumerate(kept) for b in kept[:i])
    assert worst <= 0.7
    # shard 1's worker died (os._exit) once; Ray retried the task and its journal is whole
    assert list((out / "shards").glob(f"*-{KILLED_SHARD}-*.killed"))
    assert len(list((out / "shards").glob("*.jsonl"))) == 3


def test_same_shard_count_is_byte_identical_and_a_rerun_reuses_journals(ray_cluster, tmp_path):
    first, second = _run(tmp_path, "a", shards=2), _run(tmp_path, "b", shards=2)
    for name in ("accepted.jsonl", "rejected.jsonl"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    journals = sorted((first / "shards").glob("*.jsonl"))
    stamps = [p.stat().st_mtime_ns for p in journals]
    _run(tmp_path, "a", shards=2)  # the driver "restarted": finished shards are not recomputed
    assert [p.stat().st_mtime_ns for p in journals] == stamps


def test_filter_without_ray_never_imports_ray(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", _records(20))
    code = ("import sys; from sftdata.cli import main\n"
            f"try: main(['filter', {str(tmp_path / 'in.jsonl')!r}, '--out', {str(tmp_path / 'o')!r}, '--json'])\n"
            "except SystemExit as e: assert not e.code\n"
            "assert 'ray' not in sys.modules, 'ray imported'\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
