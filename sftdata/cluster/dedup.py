"""The MinHash-LSH candidate search of ``--rouge-blocking lsh`` distributed over a Ray cluster.

Three steps, the first two as Ray tasks:

1. *signatures*: slices of the texts, each task computing every text's ``bands`` bucket keys with
   :meth:`sftdata.filter.lsh.LSHIndex.band_keys` (the same code, hashes and keys as one process);
2. *buckets*: the bands split among tasks; each sorts every text's key of its bands, turns each run
   of equal keys into candidate pairs and verifies them with the exact ROUGE-L F (numba kernel, on
   token ids the driver interned once), returning the pairs above the threshold;
3. *replay* (driver): :class:`EdgeIndex` answers the filter's ``check_and_add_many`` calls from those
   pairs: a text is dropped when a pair joins it to an earlier text that was kept.

One process's :class:`~sftdata.filter.lsh.LSHIndex` drops a text exactly when a kept earlier text
shares one of its buckets and scores above the threshold; step 2 finds every pair that shares a
bucket, so the decisions are the same (tested). What does not scale here: a bucket holding m texts
costs m(m-1)/2 verified pairs (templated near-identical data), and the replay holds the pairs and
one dict of the distinct instructions in the driver's memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..filter.config import FilterConfig
from ..filter.rouge import MAX_COMPARED_TOKENS, RougeMatch
from ..filter.tokenize import get_tokenizer


def _index(config: FilterConfig) -> Any:
    from ..filter.lsh import LSHIndex

    return LSHIndex(config.rouge_tokenizer, config.rouge_threshold, config.lsh_bands, config.lsh_rows)


def _signatures(texts: list[str], config: FilterConfig) -> tuple[np.ndarray, np.ndarray]:
    return _index(config).band_keys(texts)


def _bucket_pairs(signature_parts: list[Any], bands: list[int], toks: np.ndarray, start: np.ndarray,
                  threshold: float) -> np.ndarray:
    """Rows (later, earlier, F) of the pairs sharing a bucket of ``bands`` whose F > threshold."""
    import ray

    from ..filter.lsh import pair_scores

    parts = [ray.get(ref) for ref in signature_parts]
    present = np.concatenate([p for _, p in parts])
    ids = np.flatnonzero(present)
    codes: list[np.ndarray] = []
    for band in bands:
        keys = np.concatenate([k[:, band] for k, _ in parts])[ids]
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        edges = np.flatnonzero(np.diff(sorted_keys)) + 1
        for run in np.split(order, edges):
            if len(run) > 1:
                members = np.sort(ids[run]).astype(np.int64)
                first, second = np.triu_indices(len(members), k=1)  # first < second: earlier, later
                codes.append(members[first] * len(present) + members[second])
    if not codes:
        return np.zeros((0, 3))
    unique = np.unique(np.concatenate(codes))
    earlier, later = unique // len(present), unique % len(present)
    scores = pair_scores(toks, start, earlier, later)
    above = scores > threshold
    return np.stack([later[above], earlier[above], scores[above]], axis=1)


def _intern(texts: list[str], tokenizer: str) -> tuple[np.ndarray, np.ndarray]:
    """Every text's token ids (one vocabulary), concatenated, and where each text starts."""
    tokenize = get_tokenizer(tokenizer)
    vocab: dict[str, int] = {}
    flat: list[int] = []
    start = [0]
    for text in texts:
        flat.extend(vocab.setdefault(tok, len(vocab)) for tok in tokenize(text)[:MAX_COMPARED_TOKENS])
        start.append(len(flat))
    return np.array(flat, dtype=np.int32), np.array(start, dtype=np.int64)


def lsh_pairs(ray: Any, texts: list[str], config: FilterConfig, tasks: int) -> np.ndarray:
    """Rows (later, earlier, F) of every pair of ``texts`` that shares an LSH bucket and scores above
    the threshold, computed by Ray tasks (steps 1 and 2)."""
    if len(texts) < 2:
        return np.zeros((0, 3))
    slices = max(1, min(tasks, len(texts)))
    bounds = [len(texts) * k // slices for k in range(slices + 1)]
    sign = ray.remote(_signatures)
    parts = [sign.remote(texts[bounds[k]:bounds[k + 1]], config) for k in range(slices)]
    toks, start = _intern(texts, config.rouge_tokenizer)
    toks_ref, start_ref = ray.put(toks), ray.put(start)
    groups = [list(range(config.lsh_bands))[g::slices] for g in range(min(slices, config.lsh_bands))]
    search = ray.remote(_bucket_pairs)
    found = ray.get([search.remote(parts, group, toks_ref, start_ref, config.rouge_threshold) for group in groups])
    rows = np.concatenate(found) if found else np.zeros((0, 3))
    if not len(rows):
        return rows
    _, first = np.unique(rows[:, 0] * len(texts) + rows[:, 1], return_index=True)  # a pair found in two bands
    return rows[np.sort(first)]


class EdgeIndex:
    """:class:`~sftdata.filter.lsh.LSHIndex`'s decisions replayed from :func:`lsh_pairs`' verified pairs.

    ``texts``: the ``against`` texts, then the distinct instructions in the order the filter will
    check them; ``pairs`` were computed over exactly that list."""

    def __init__(self, texts: list[str], against: int, pairs: np.ndarray, threshold: float) -> None:
        self.threshold = threshold
        self._texts = texts
        self._against = against
        self._added = 0
        self._position = {text: against + i for i, text in enumerate(texts[against:])}
        self._earlier: dict[int, list[tuple[int, float]]] = {}
        for later, earlier, score in pairs.tolist():
            self._earlier.setdefault(int(later), []).append((int(earlier), score))
        self._stored: set[int] = set()

    def __len__(self) -> int:
        return len(self._stored)

    def add_many(self, texts: Iterable[str]) -> None:
        for _ in texts:  # the against texts, in order: positions 0 .. against-1
            self._stored.add(self._added)
            self._added += 1

    def check_and_add_many(self, texts: Iterable[str]) -> list[RougeMatch]:
        matches = []
        for text in texts:
            position = self._position[text]
            best, best_doc = 0.0, -1
            for earlier, score in sorted(self._earlier.get(position, ())):  # ties: the earliest stored
                if earlier in self._stored and score > best:
                    best, best_doc = score, earlier
            novel = best <= self.threshold
            if novel:
                self._stored.add(position)
            matches.append(RougeMatch(novel=novel, score=best,
                                      most_similar=self._texts[best_doc] if best_doc >= 0 else None))
        return matches
