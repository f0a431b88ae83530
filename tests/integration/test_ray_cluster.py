"""``--ray``: the filter sharded on a real two-node Ray cluster (ray.cluster_utils.Cluster, one
machine), checked with rouge-score's own scorer; a worker killed mid-shard; byte-identical reruns;
the single-machine path never importing ray. And the LLM stages on the cluster (``llm.ray``) against
the loopback server: generate with a worker actor killed mid-run equals the one-process run (but for the
servers' request ids); ``sftdata run``'s judge holds ``max_requests`` across the workers and resumes paying nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from cli_helpers import run_cli
from generate_replies import make_reply
from run_files import body_key, read_rows
from seed_tasks import SEEDS_EN, write_seeds
from system_deps import missing
from test_generate import without_server_ids
from test_judge import judge_reply
from test_judge_pipeline import write_config as judge_config

from sftdata.core.records import Record, write_jsonl
from sftdata.generate import GenerateConfig, generate
from sftdata.llm.client import LLMConfig

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
    try:
        import ray
    except ImportError:  # `make test` installs it (the dev extra pulls sftdata[cluster])
        missing("ray is not installed (pip install 'sftdata[cluster]')")
    from ray.cluster_utils import Cluster

    os.environ["SFTDATA_TEST_KILL_SHARD"] = KILLED_SHARD  # inherited by the raylets' workers
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()
    os.environ.pop("SFTDATA_TEST_KILL_SHARD", None)


def _run(tmp_path: Path, name: str, shards: int, extra: tuple[str, ...] = ()) -> Path:
    from sftdata.cli import main

    inp = tmp_path / "in.jsonl"
    if not inp.exists():
        write_jsonl(inp, _records())
    out = tmp_path / name
    try:
        main(["filter", str(inp), "--out", str(out), "--ray", "auto", "--shards", str(shards), "--json", *extra])
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


def test_lsh_blocking_on_the_cluster_decides_as_one_process(ray_cluster, tmp_path):
    from sftdata.cli import main

    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, _records())
    try:
        main(["filter", str(inp), "--out", str(tmp_path / "one"), "--rouge-blocking", "lsh", "--json"])
    except SystemExit as exc:
        assert not exc.code
    out = _run(tmp_path, "lsh", shards=3, extra=("--rouge-blocking", "lsh"))
    for name in ("accepted.jsonl", "rejected.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    reasons = Counter(json.loads(line)["reason"] for line in (out / "rejected.jsonl").open())
    assert reasons["rouge"] > 10


def test_filter_without_ray_never_imports_ray(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", _records(20))
    code = ("import sys; from sftdata.cli import main\n"
            f"try: main(['filter', {str(tmp_path / 'in.jsonl')!r}, '--out', {str(tmp_path / 'o')!r}, '--json'])\n"
            "except SystemExit as e: assert not e.code\n"
            "import sftdata.generate.api, sftdata.judge.api, sftdata.filter.lsh, sftdata.pipeline\n"
            "assert 'ray' not in sys.modules, 'ray imported'\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


# ---------------------------------------------------------------- LLM stages on the cluster (llm.ray)

def _llm(server, **overrides) -> LLMConfig:
    values = dict(base_urls=[server.url], model="test-model", concurrency=4, max_attempts=4, retry_base=0.01,
                  timeout=10)
    return LLMConfig(**{**values, **overrides})


def _kill_a_worker_when(server, sent: int) -> threading.Thread:
    """Once the server got ``sent`` requests, kill worker 0 (Ray restarts it): requests die with it."""
    import ray

    from sftdata.cluster.llm import WORKER_PREFIX

    def kill() -> None:
        deadline = time.time() + 120
        while server.count < sent and time.time() < deadline:
            time.sleep(0.01)
        name = next(n for n in ray.util.list_named_actors() if n.startswith(WORKER_PREFIX) and n.endswith("-0"))
        ray.kill(ray.get_actor(name), no_restart=False)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_generate_on_ray_equals_one_process_and_survives_a_killed_worker(ray_cluster, tmp_path, make_server):
    seeds = write_seeds(tmp_path / "seeds.jsonl", SEEDS_EN)
    config = GenerateConfig(seeds=[str(seeds)], num_instructions=16, instances_per_task=2, round_size=4)
    reference = make_server(reply=make_reply([s[0] for s in SEEDS_EN], "en"))
    generate(config, _llm(reference), tmp_path / "one", progress=False)

    server = make_server(reply=make_reply([s[0] for s in SEEDS_EN], "en"), latency=0.2)
    killer = _kill_a_worker_when(server, sent=10)
    summary = generate(config, _llm(server, ray="auto", ray_workers=2), tmp_path / "ray", progress=False)
    killer.join(5)
    cluster = summary["llm"]["ray"]
    assert cluster["workers"] == 2 and all(cluster["sent_per_worker"]) and cluster["worker_failures"] >= 1
    for name in ("accepted.jsonl", "rejected.jsonl", "instructions.jsonl"):  # the same, but the servers' ids
        ray_rows, one_rows = read_rows(tmp_path / "ray" / name), read_rows(tmp_path / "one" / name)
        assert without_server_ids(ray_rows) == without_server_ids(one_rows), name
    # only requests the dead worker held were sent again; none whose answer had come back
    twice = sum(n - 1 for n in Counter(body_key(b) for b in server.bodies).values())
    assert twice <= cluster["worker_failures"]
    assert summary["llm"]["sent"] == summary["llm"]["paid_requests"] == reference.count
    sent = server.count
    generate(config, _llm(server, ray="auto", ray_workers=2), tmp_path / "ray", progress=False)
    assert server.count == sent  # the driver "restarted": everything answered comes from its cache


def test_run_judge_on_ray_holds_the_budget_across_workers_and_resumes(ray_cluster, tmp_path, make_server, capsys):
    server = make_server(reply=judge_reply, latency=0.05)
    config = judge_config(tmp_path, server.url, judge={"rubric": "self-instruct"})
    raw = yaml.safe_load(config.read_text())
    raw["llm"].update(ray="auto", ray_workers=2, concurrency=8, max_requests=4)
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    out = tmp_path / "run"
    code, _, err = run_cli(["run", str(config), "--out", str(out), "--no-progress"], capsys)
    assert code == 0 and "budget reached (--max-requests 4" in err, err
    assert server.count == 4  # 2 workers x 8 in flight, and still exactly the budget
    code, _, err = run_cli(["run", str(config), "--out", str(out), "--no-progress", "--set", "llm.max_requests=50"],
                           capsys)
    assert code == 0, err
    keys = [body_key(body) for body in server.bodies]
    assert server.count == 9 and len(set(keys)) == 9  # the 4 paid answers came from the cache
    judged = [json.loads(x) for x in (out / "judge" / "accepted.jsonl").read_text().splitlines()]
    assert len(judged) == 9
    stats = json.loads((out / "judge" / "stats.json").read_text())
    assert stats["llm"]["ray"]["workers"] == 2 and stats["llm"]["paid_requests"] == 9
