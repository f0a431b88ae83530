"""ROUGE-L novelty with MinHash-LSH blocking (``--rouge-blocking lsh``): candidates from LSH buckets,
each verified with the exact ROUGE-L F (rouge-score's expression), so a text is only ever dropped
for a real pair above the threshold; a pair LSH never brings together is missed.

Why the blocking can work for ROUGE-L: the LCS is at most the multiset overlap, so a pair with
F > t shares at least t(a+b)/2 of its *elements* ((token, k-th occurrence) pairs, as in
``rouge.py``), and the Jaccard similarity of the element sets is then at least (t/2)/(1 - t/2):
0.538 at t = 0.7. MinHash estimates that Jaccard; with ``bands`` bands of ``rows`` rows a pair of
Jaccard J becomes a candidate with probability 1 - (1 - J^rows)^bands. So recall is a property of
the data (how far above 0.538 its near-duplicates' Jaccard sits), measured by bench/cluster.py
against the exact filter, and docs/cluster.md gives the numbers. CJK text is tokenized per
character exactly as the exact filter does (``--rouge-tokenizer``), so the blocking is CJK-aware.

Per text the cost is one signature (``bands * rows`` hashes of its elements, vectorized over a
chunk of texts), ``bands`` bucket keys and an LCS per candidate. Unrelated texts that share frequent
tokens fill a few buckets whose size grows with the corpus (all their pairs: ~N^2); the batch search
(:func:`bucket_pairs`) therefore searches a bucket of more than ``BUCKET_CAP`` members with the exact
prefix-filter index instead of pair by pair, and streams the other candidates a chunk at a time.
The incremental :class:`LSHIndex` has no cap: it is the reference for buckets up to the cap.
Element hashes are CRC-32 based, not Python's ``hash``, so signatures are the same in every process
(Ray workers, reruns): the output is deterministic.
"""

from __future__ import annotations

import itertools
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from numba import njit

from ._lcs import fscore
from .rouge import MAX_COMPARED_TOKENS, RougeIndex, RougeMatch
from .tokenize import get_tokenizer

__all__ = ["LSHIndex", "EdgeIndex", "lsh_pairs", "local_map"]

DEFAULT_BANDS = 32
_CHUNK = 1024  # texts per signature matrix
DEFAULT_ROWS = 6
_SEED = 20240601
BUCKET_CAP = 256  # a bucket with more members is frequent-token noise: not all its pairs (below)
_PAIR_CHUNK = 1 << 20  # candidate pairs generated and verified at a time: bounds the memory


def _permutations(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Multiply-shift hash functions ((a * x + b) mod 2^64, a odd): one per signature row."""
    rng = np.random.default_rng(_SEED)
    a = rng.integers(1, 2**63, size=count, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=count, dtype=np.uint64)
    return a[:, None], b[:, None]


@njit(cache=True)
def _best_candidate(toks, start, candidates, query):
    """(best ROUGE-L F, its doc) of ``query`` against the candidate docs (ascending: ties keep the
    earliest); F is rouge-score's expression (``_lcs.fscore``), the LCS a plain dynamic programme."""
    b = query.shape[0]
    row = np.zeros(b + 1, dtype=np.int32)
    best, best_doc = 0.0, -1
    for doc in candidates:
        s, e = start[doc], start[doc + 1]
        row[:] = 0
        for i in range(s, e):
            diagonal = 0
            x = toks[i]
            for j in range(b):
                above = row[j + 1]
                if x == query[j]:
                    row[j + 1] = diagonal + 1
                elif row[j] > above:
                    row[j + 1] = row[j]
                diagonal = above
        score = fscore(row[b], e - s, b)
        if score > best:
            best, best_doc = score, doc
    return best, best_doc


@njit(cache=True)
def pair_scores(toks, start, left, right):
    """ROUGE-L F of each pair (left[k], right[k]) of texts stored in ``toks[start[d]:start[d+1]]``."""
    out = np.zeros(left.shape[0], dtype=np.float64)
    for k in range(left.shape[0]):
        best, _doc = _best_candidate(toks, start, left[k:k + 1], toks[start[right[k]]:start[right[k] + 1]])
        out[k] = best
    return out


class LSHIndex:
    """Kept texts in ``bands`` LSH tables, checked one at a time: the incremental reference of the batch
    form the filter runs (:func:`lsh_pairs` + :class:`EdgeIndex`, tested to decide the same), with the
    :class:`~sftdata.filter.rouge.RougeIndex` calls (``add_many``, ``check_and_add_many``, ``len``).
    ``score`` / ``most_similar`` of a match are the best verified candidate's (0.0 / None: none)."""

    def __init__(self, tokenizer: str = "auto", threshold: float = 0.7, bands: int = DEFAULT_BANDS,
                 rows: int = DEFAULT_ROWS) -> None:
        if bands < 1 or rows < 1:
            raise ValueError("bands and rows must be at least 1")
        self.threshold = float(threshold)
        self.bands, self.rows = bands, rows
        self._tokenize = get_tokenizer(tokenizer)
        self._a, self._b = _permutations(bands * rows)
        self._mix = np.random.default_rng(_SEED + 1).integers(1, 2**63, size=rows, dtype=np.uint64) | np.uint64(1)
        self._tables: list[dict[int, list[int]]] = [{} for _ in range(bands)]
        self._vocab: dict[str, int] = {}
        self._toks = array("i")  # every stored text's token ids, concatenated
        self._start = array("q", [0])
        self._texts: list[str] = []
        self._hash_cache: dict[tuple[str, int], int] = {}
        self.pairs_scored = 0

    def __len__(self) -> int:
        return len(self._texts)

    @property
    def stats(self) -> dict:
        return {"texts": len(self._texts), "pairs_scored": self.pairs_scored}

    def add_many(self, texts: Iterable[str]) -> None:
        texts = list(texts)
        tokens = [self._tokens(text) for text in texts]
        for text, toks, keys in zip(texts, tokens, self._band_keys(tokens)):
            self._store(text, toks, keys)

    def check_and_add_many(self, texts: Iterable[str]) -> list[RougeMatch]:
        """Each text in order against the stored ones and the earlier novel texts of the same call."""
        texts = list(texts)
        tokens = [self._tokens(text) for text in texts]
        matches = []
        for text, toks, keys in zip(texts, tokens, self._band_keys(tokens)):
            match = self._check(toks, keys)
            if match.novel:
                self._store(text, toks, keys)
            matches.append(match)
        return matches

    def band_keys(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(keys (len(texts), bands) uint64, has_tokens bool): the buckets each text falls in, for the
        batch search (:func:`lsh_pairs`), which must agree with this index."""
        keys = np.zeros((len(texts), self.bands), dtype=np.uint64)
        present = np.zeros(len(texts), dtype=bool)
        for at in range(0, len(texts), _CHUNK):  # the (bands*rows, elements) hash matrix stays small
            filled, chunk_keys = self._key_matrix([self._tokens(text) for text in texts[at:at + _CHUNK]])
            keys[at + filled], present[at + filled] = chunk_keys, True
        return keys, present

    # ------------------------------------------------------------ internals

    def _tokens(self, text: str) -> list[str]:
        return self._tokenize(text)[:MAX_COMPARED_TOKENS]

    def _element_hashes(self, tokens: list[str]) -> list[int]:
        seen: dict[str, int] = {}
        out = []
        cache = self._hash_cache
        for tok in tokens:
            k = seen[tok] = seen.get(tok, 0) + 1
            value = cache.get((tok, k))
            if value is None:
                value = cache[(tok, k)] = zlib.crc32(f"{tok}\x00{k}".encode())
            out.append(value)
        if len(cache) > 2_000_000:  # a bound on memory, not on correctness
            cache.clear()
        return out

    def _band_keys(self, token_lists: list[list[str]]) -> list[list[int] | None]:
        """Per text its ``bands`` bucket keys (None: no tokens, so F = 0 against everything)."""
        out: list[list[int] | None] = [None] * len(token_lists)
        filled, keys = self._key_matrix(token_lists)
        for i, row in zip(filled.tolist(), keys.tolist()):
            out[i] = row
        return out

    def _key_matrix(self, token_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(indices of the texts with tokens, their (n, bands) uint64 bucket keys)."""
        hashes = [self._element_hashes(tokens) for tokens in token_lists]
        sizes = np.array([len(h) for h in hashes], dtype=np.int64)
        filled = np.flatnonzero(sizes)
        if not len(filled):
            return filled, np.zeros((0, self.bands), dtype=np.uint64)
        flat = np.fromiter(itertools.chain.from_iterable(hashes), dtype=np.uint64, count=int(sizes.sum()))
        flat *= np.uint64(0x9E3779B97F4A7C15)  # spread the 32-bit CRCs over 64 bits
        starts = np.concatenate([[0], np.cumsum(sizes[filled])[:-1]])
        with np.errstate(over="ignore"):
            signature = np.minimum.reduceat(self._a * flat + self._b, starts, axis=1)  # (bands*rows, texts)
            per_band = signature.T.reshape(len(filled), self.bands, self.rows)
            keys = (per_band * self._mix).sum(axis=2, dtype=np.uint64)  # one 64-bit key per band
        return filled, keys

    def _check(self, tokens: list[str], keys: list[int] | None) -> RougeMatch:
        if keys is None:
            return RougeMatch(novel=True, score=0.0, most_similar=None)
        candidates: set[int] = set()
        for table, key in zip(self._tables, keys):
            found = table.get(key)
            if found:
                candidates.update(found)
        if not candidates:
            return RougeMatch(novel=True, score=0.0, most_similar=None)
        vocab = self._vocab
        query = np.array([vocab.get(tok, -1) for tok in tokens], dtype=np.int32)
        self.pairs_scored += len(candidates)
        best, best_doc = _best_candidate(np.frombuffer(self._toks, dtype=np.int32),
                                         np.frombuffer(self._start, dtype=np.int64),
                                         np.array(sorted(candidates), dtype=np.int64), query)
        similar = self._texts[best_doc] if best_doc >= 0 else None
        return RougeMatch(novel=best <= self.threshold, score=best, most_similar=similar)

    def _store(self, text: str, tokens: list[str], keys: list[int] | None) -> None:
        doc = len(self._texts)
        self._texts.append(text)
        vocab = self._vocab
        self._toks.extend(vocab.setdefault(tok, len(vocab)) for tok in tokens)
        self._start.append(len(self._toks))
        if keys is not None:
            for table, key in zip(self._tables, keys):
                table.setdefault(key, []).append(doc)


# ---------------------------------------------------------------- batch form (filter, cluster)

Mapper = Callable[..., list[Any]]  # (fn, calls, shared) -> [fn(*call, *shared) for call in calls]


def local_map(fn: Callable[..., Any], calls: list[tuple], shared: tuple = ()) -> list[Any]:
    return [fn(*call, *shared) for call in calls]


def signatures(texts: list[str], config: Any) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`LSHIndex.band_keys` of ``texts`` under ``config``'s (FilterConfig) settings."""
    return LSHIndex(config.rouge_tokenizer, config.rouge_threshold, config.lsh_bands, config.lsh_rows).band_keys(texts)


def bucket_pairs(bands: list[int], parts: list[tuple[np.ndarray, np.ndarray]], toks: np.ndarray,
                 start: np.ndarray, threshold: float, cap: int = BUCKET_CAP) -> np.ndarray:
    """Rows (later, earlier, F) of the pairs sharing a bucket of ``bands`` whose F > threshold.
    ``parts``: :func:`signatures` of consecutive slices of the texts.

    Streamed: the pairs of each band are made ``_PAIR_CHUNK`` at a time and verified at once, so the
    memory is the keys plus one chunk, however many candidates there are. A pair that shares buckets
    in several bands is verified in the first of them only (the earlier bands' keys say so), so a
    pair costs one LCS whichever task holds which bands. A bucket of more than ``cap`` members is
    searched by the exact prefix-filter index instead (:func:`_oversize_pairs`), not pair by pair."""
    keys = np.ascontiguousarray(np.concatenate([k for k, _ in parts]).T)  # (bands, texts)
    ids = np.flatnonzero(np.concatenate([p for _, p in parts]))
    enumerated = np.zeros((keys.shape[0], len(ids)), dtype=bool)  # [band, i]: ids[i]'s bucket had its pairs made
    runs = []
    for band in range(max(bands, default=-1) + 1):
        order, starts, lengths = _runs(keys[band, ids])
        enumerated[band, order] = np.repeat(lengths <= cap, lengths)
        runs.append((order, starts, lengths))
    where = np.full(keys.shape[1], -1, dtype=np.int64)
    where[ids] = np.arange(len(ids))
    rows = [np.zeros((0, 3))]
    for band in bands:
        order, starts, lengths = runs[band]
        for earlier, later in _candidates(ids[order], starts, lengths, cap):
            fresh = np.ones(len(earlier), dtype=bool)
            for before in range(band):  # met in an earlier band's enumerated bucket: verified there
                fresh &= ~((keys[before, earlier] == keys[before, later]) & enumerated[before, where[earlier]])
            earlier, later = earlier[fresh], later[fresh]
            scores = pair_scores(toks, start, earlier, later)
            above = scores > threshold
            rows.append(np.stack([later[above], earlier[above], scores[above]], axis=1))
        for first_row, length in zip(starts[lengths > cap].tolist(), lengths[lengths > cap].tolist()):
            members = np.sort(ids[order[first_row:first_row + length]])
            rows.append(_oversize_pairs(members, toks, start, threshold))
    return np.concatenate(rows)


def _runs(band_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stable order of the keys, where each run of equal keys starts in it, run lengths)."""
    order = np.argsort(band_keys, kind="stable")
    starts = np.concatenate([[0], np.flatnonzero(np.diff(band_keys[order])) + 1]).astype(np.int64)
    return order, starts, np.diff(np.append(starts, len(order)))


def _candidates(members: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                cap: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(earlier, later) pairs of every bucket of 2..cap members, at most about ``_PAIR_CHUNK`` at a
    time; ``members``: text ids in key order (ascending within a bucket: the sort was stable)."""
    for length in np.unique(lengths[(lengths >= 2) & (lengths <= cap)]).tolist():
        first, second = np.triu_indices(length, k=1)  # first < second: earlier, later
        bucket_starts = starts[lengths == length]
        step = max(1, _PAIR_CHUNK // len(first))
        for at in range(0, len(bucket_starts), step):
            base = bucket_starts[at:at + step, None]
            yield (members[base + first].ravel().astype(np.int64),
                   members[base + second].ravel().astype(np.int64))


def _oversize_pairs(members: np.ndarray, toks: np.ndarray, start: np.ndarray, threshold: float) -> np.ndarray:
    """Rows (later, earlier, F > threshold) in a bucket of too many members for all their pairs:
    the members in order through the exact prefix-filter index (:class:`RougeIndex`, check and add),
    so each member gets a row for a member it is found similar to among those kept before it in the
    bucket. Every row is a real pair above the threshold (the F is rouge-score's expression, as in
    :func:`pair_scores`); a pair whose earlier text the bucket's pass dropped is not reported (a miss
    in the recall, never a wrong drop). The index reads the token ids as words ("rouge" tokenizer)."""
    words = [" ".join(map(str, toks[start[doc]:start[doc + 1]].tolist())) for doc in members.tolist()]
    kept: dict[str, int] = {}
    rows = []
    for doc, text, match in zip(members.tolist(), words, RougeIndex("rouge", threshold).check_and_add_many(words)):
        if match.novel:
            kept.setdefault(text, doc)
        else:
            rows.append((doc, kept[match.most_similar], match.score))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def intern(texts: list[str], tokenizer: str) -> tuple[np.ndarray, np.ndarray]:
    """Every text's token ids (one vocabulary), concatenated, and where each text starts."""
    tokenize = get_tokenizer(tokenizer)
    vocab: dict[str, int] = {}
    flat: list[int] = []
    start = [0]
    for text in texts:
        flat.extend(vocab.setdefault(tok, len(vocab)) for tok in tokenize(text)[:MAX_COMPARED_TOKENS])
        start.append(len(flat))
    return np.array(flat, dtype=np.int32), np.array(start, dtype=np.int64)


def lsh_pairs(texts: list[str], config: Any, mapper: Mapper = local_map, tasks: int = 1) -> np.ndarray:
    """Rows (later, earlier, F) of every pair of ``texts`` that shares an LSH bucket and scores above
    the threshold: signatures per slice, then candidate pairs per group of bands, each step a
    ``mapper`` call (in this process, or Ray tasks: sftdata.cluster.dedup)."""
    if len(texts) < 2:
        return np.zeros((0, 3))
    slices = max(1, min(tasks, len(texts)))
    bounds = [len(texts) * k // slices for k in range(slices + 1)]
    parts = mapper(signatures, [(texts[bounds[k]:bounds[k + 1]],) for k in range(slices)], (config,))
    toks, start = intern(texts, config.rouge_tokenizer)
    groups = [list(range(config.lsh_bands))[g::slices] for g in range(min(slices, config.lsh_bands))]
    found = mapper(bucket_pairs, [(group,) for group in groups], (parts, toks, start, config.rouge_threshold))
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
