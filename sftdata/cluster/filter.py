"""The filter stage sharded over a Ray cluster.

Semantics (docs/cluster.md): the input is cut into ``shards`` contiguous slices. Each slice runs as
a Ray task: every rule, then ROUGE-L novelty *within the slice* (against the ``--against`` texts
too), the expensive and parallel part. Its verdicts go to its own journal,
``<out>/shards/filter-<key>-<k>.jsonl`` (written whole, then renamed: a journal is complete or
absent), so a task Ray retries after a worker died simply redoes its slice, and a driver killed
and restarted with the same command reuses every finished journal. The driver then runs the
global pass over the records the slices kept, in input order: exact ROUGE-L against every record
kept before it in any slice (and the duplicate rule across slices), with exactly rouge-score's
decisions. So no two kept instructions score above the threshold, whichever slices they came from.

A record a slice rejected as too similar to a slice-mate stays rejected even when that mate is
later dropped by the global pass: the kept set can be slightly smaller than the one-process run's,
never less novel. The output depends on the input, the settings and the shard count only: the same
shard count gives byte-identical files.

With ``--rouge-blocking lsh`` the slices apply the rules only, and the novelty decisions come from
the LSH candidate search run as Ray tasks over all their survivors (cluster.dedup): the output is
then exactly one process's ``--rouge-blocking lsh`` output, whatever the shard count.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..core.records import Record, dumps
from ..filter.config import RULES, FilterConfig
from ..filter.stage import Verdict, filter_records
from .runtime import cluster_cpus, connect

_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(Record))


def sharded_filter_records(records: list[Record], config: FilterConfig, against: list[str], out: Path, *,
                           address: str, shards: int | None = None) -> list[tuple[Record, Verdict]]:
    """``filter_records``'s (record, verdict) pairs in input order, computed on the cluster."""
    ray = connect(address)
    count = max(1, min(shards or cluster_cpus(ray), len(records) or 1))
    bounds = [len(records) * k // count for k in range(count + 1)]
    slices = [records[bounds[k]:bounds[k + 1]] for k in range(count)]
    journal_dir = Path(out) / "shards"
    journal_dir.mkdir(parents=True, exist_ok=True)
    key = _key(config, against, count)
    paths = [journal_dir / f"filter-{key}-{k:04d}-{_digest(part)}.jsonl" for k, part in enumerate(slices)]
    blocked = config.rouge_blocking == "lsh" and config.enabled("rouge")
    # lsh: the slices apply the rules only; the candidate search runs on the cluster over all of them
    shard_config = dataclasses.replace(config, disabled=config.disabled | {"rouge", "duplicate"}) if blocked else config
    task = ray.remote(max_retries=3, retry_exceptions=False)(_filter_shard)
    pending = [task.remote(part, shard_config, against, str(path))
               for part, path in zip(slices, paths) if not path.exists()]
    ray.get(pending)  # a worker that dies is retried by Ray (max_retries); journals are whole files
    local = [pair for path, part in zip(paths, slices) for pair in _read_journal(path, part)]
    index = _cluster_lsh(ray, local, config, against, count) if blocked else None
    return _global_pass(local, config, against, index)


def _cluster_lsh(ray: Any, local: list[tuple[Record, Verdict]], config: FilterConfig, against: list[str],
                 tasks: int) -> Any:
    """The LSH decisions for the rules' survivors, from pairs the cluster found (cluster.dedup)."""
    from ..filter.lsh import EdgeIndex, lsh_pairs
    from .dedup import ray_mapper

    distinct = list(dict.fromkeys(record.instruction for record, verdict in local if verdict is None))
    texts = [*against, *distinct]
    pairs = lsh_pairs(texts, config, ray_mapper(ray), tasks)
    return EdgeIndex(texts, len(against), pairs, config.rouge_threshold)


def _filter_shard(part: list[Record], config: FilterConfig, against: list[str], path: str) -> str:
    """One slice: every rule and slice-local novelty; the journal is written whole, then renamed."""
    if os.environ.get("SFTDATA_TEST_KILL_SHARD") and Path(path).name.split("-")[2] == \
            os.environ["SFTDATA_TEST_KILL_SHARD"] and not Path(path + ".killed").exists():
        Path(path + ".killed").touch()  # the test's fault: this worker dies once, mid-shard
        os._exit(1)
    tmp = Path(path + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for record, verdict in filter_records(part, config, against):
            fh.write(dumps({"record": record.to_dict(), "verdict": verdict}) + "\n")
    os.replace(tmp, path)
    return path


def _read_journal(path: Path, part: list[Record]) -> list[tuple[Record, Verdict]]:
    pairs = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            fields = {name: row["record"][name] for name in _RECORD_FIELDS}
            verdict = row["verdict"]
            pairs.append((Record(**fields), None if verdict is None else (verdict[0], verdict[1])))
    if len(pairs) != len(part):
        raise RuntimeError(f"{path}: {len(pairs)} verdicts for {len(part)} records (remove it and rerun)")
    return pairs


def _global_pass(local: list[tuple[Record, Verdict]], config: FilterConfig, against: list[str],
                 index: Any = None) -> list[tuple[Record, Verdict]]:
    """ROUGE-L novelty and the duplicate rule over the slices' kept records, in input order."""
    only_global = dataclasses.replace(config, disabled=frozenset(RULES) - {"rouge", "duplicate"} | config.disabled,
                                      instance_rules=False)
    survivors = [record for record, verdict in local if verdict is None]
    decided = iter(filter_records(survivors, only_global, against, rouge_index=index))
    return [next(decided) if verdict is None else (record, verdict) for record, verdict in local]


def _key(config: FilterConfig, against: list[str], count: int) -> str:
    settings: dict[str, Any] = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    settings["disabled"] = sorted(config.disabled)
    payload = json.dumps([settings, against, count], ensure_ascii=False, sort_keys=True, default=list)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def _digest(part: list[Record]) -> str:
    hasher = hashlib.sha256()
    for record in part:
        hasher.update(record.to_json().encode("utf-8") + b"\n")
    return hasher.hexdigest()[:12]
