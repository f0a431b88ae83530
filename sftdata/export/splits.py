"""Leak-free train / validation / test splits: relatives never straddle two splits.

Two records are relatives (the same *split group*) when any of these links them, transitively:

    instruction    the same instruction, up to case and spacing (one task's instances)
    lineage        a record and its parent (``parent_id``), so every record derived from one root
                   (paraphrases, Evol-Instruct rewrites, their children) shares that root's group,
                   also when the parent itself was filtered out before export
    near-duplicate instructions with ROUGE-L F > 0.7 (the Self-Instruct novelty threshold, found with
                   the filter stage's index), and outputs equal after normalization (at least four
                   words, or four CJK characters: short labels such as "Positive" are shared by
                   unrelated tasks)

Groups are then dealt out as before: ordered by stratum (is_classification, lang), then by a
seeded hash of the group's smallest instruction key; each goes to the split furthest below its
share so far. So a test record never has a relative in train, and the result does not depend on the
input order.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..core.records import Record
from ..core.stats import text_length

SPLITS = ("train", "validation", "test")
NEAR_DUPLICATE_ROUGE = 0.7
MIN_SHARED_OUTPUT = 4  # words (or CJK characters) an output needs before equal outputs link records


def group_key(instruction: str) -> str:
    # case and spacing differences do not make a different task: they must not straddle splits either
    return " ".join(instruction.split()).casefold()


class _Groups:
    """Union-find over hashable keys."""

    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, key: Any) -> Any:
        self.parent.setdefault(key, key)
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:  # path compression
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, a: Any, b: Any) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb, key=repr)] = min(ra, rb, key=repr)  # deterministic root
        return True


def split_groups(records: Sequence[Record]) -> tuple[list[Any], dict[str, int]]:
    """The group of each record and how many merges each kind of link made."""
    from ..filter.rouge import RougeIndex

    groups = _Groups()
    links: Counter[str] = Counter()
    keys = [("i", group_key(r.instruction)) for r in records]
    for key, rec in zip(keys, records):
        groups.find(key)
        if rec.id:
            groups.union(key, ("id", rec.id))  # a record's children name it by id
        if rec.parent_id:
            links["lineage"] += groups.union(key, ("id", rec.parent_id))
    for key, rec in zip(keys, records):
        output = " ".join(rec.output.split()).casefold()
        if text_length(output) >= MIN_SHARED_OUTPUT:
            links["same_output"] += groups.union(key, ("o", output))
    index = RougeIndex(tokenizer="auto", threshold=NEAR_DUPLICATE_ROUGE)
    unique = sorted({key for key in keys})  # sorted: the clusters do not depend on the input order
    for key, match in zip(unique, index.check_and_add_many([k[1] for k in unique])):
        if not match.novel and match.most_similar is not None:
            links["near_duplicate"] += groups.union(key, ("i", match.most_similar))
    return [groups.find(key) for key in keys], dict(links)


def _stratum(records: Sequence[Record], indices: list[int]) -> str:
    votes = Counter((records[i].is_classification, records[i].lang or "") for i in indices)
    (is_cls, lang), _ = sorted(votes.items(), key=lambda kv: (-kv[1], repr(kv[0])))[0]
    return f"{is_cls}|{lang}"


def assign_splits(records: Sequence[Record], ratios: Sequence[float], seed: int,
                  info: dict[str, Any] | None = None) -> list[str]:
    """The split name of each record: deterministic for a seed, independent of input order.

    Relatives (see the module docstring) form one group, which never straddles two splits. Walking
    the groups in stratum then seeded-hash order, each goes to the split furthest below its share so
    far: carrying the counts across strata keeps every stratum and the whole set within one group of
    the requested ratios, and a 0 ratio is never chosen. ``info``, when given, receives the group
    count and the merges each link made.
    """
    roots, links = split_groups(records)
    groups: dict[Any, list[int]] = {}
    for index, root in enumerate(roots):
        groups.setdefault(root, []).append(index)
    named = {min(group_key(records[i].instruction) for i in indices): indices for indices in groups.values()}

    def order(item: tuple[str, list[int]]) -> tuple[str, str]:
        digest = hashlib.sha256(f"{seed}\0{item[0]}".encode()).hexdigest()
        return _stratum(records, item[1]), digest

    names = [""] * len(records)
    counts = [0.0] * len(SPLITS)
    assigned = 0
    for _, indices in sorted(named.items(), key=order):
        total = assigned + len(indices)
        deficits = [ratios[j] * total - counts[j] for j in range(len(SPLITS))]
        best = max(range(len(SPLITS)), key=lambda j: (deficits[j], -j))
        counts[best] += len(indices)
        assigned = total
        for index in indices:
            names[index] = SPLITS[best]
    if info is not None:
        info.update(groups=len(named), largest_group=max((len(v) for v in named.values()), default=0),
                    links=links)
    return names


def describe(info: dict[str, Any]) -> str:
    """One sentence for the dataset card: how the splits were made."""
    links = info.get("links", {})
    return (f"Records are split by group, never across splits: {info.get('groups', 0)} groups of records sharing "
            f"an instruction (up to case and spacing), a lineage (parent_id; merged {links.get('lineage', 0)}), "
            f"a near-duplicate instruction (ROUGE-L F > {NEAR_DUPLICATE_ROUGE}; merged "
            f"{links.get('near_duplicate', 0)}) or the same output of {MIN_SHARED_OUTPUT}+ words (merged "
            f"{links.get('same_output', 0)}); the largest group has {info.get('largest_group', 0)} records.")
