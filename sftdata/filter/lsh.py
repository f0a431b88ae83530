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

Per text the cost is bounded: one signature (``bands * rows`` hashes of its elements, vectorized
over a chunk of texts), ``bands`` dictionary probes and an LCS per candidate, whatever the corpus
holds. The exact index (the default) is exact and fast on ordinary data; its cost grows with how
many stored texts share a text's rarest elements (templated data), the blocking's does not.
Element hashes are CRC-32 based, not Python's ``hash``, so signatures are the same in every process
(Ray workers, reruns): the output is deterministic.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Iterable

import numpy as np
from numba import njit

from ._lcs import fscore
from .rouge import MAX_COMPARED_TOKENS, RougeMatch
from .tokenize import get_tokenizer

DEFAULT_BANDS = 32
DEFAULT_ROWS = 6
_SEED = 20240601


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
    """Kept texts in ``bands`` LSH tables; the :class:`~sftdata.filter.rouge.RougeIndex` calls the
    filter uses (``add_many``, ``check_and_add_many``, ``len``). ``score`` / ``most_similar`` of a
    match are the best verified candidate's (0.0 / None when LSH proposed none)."""

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
        """(keys (len(texts), bands) uint64, has_tokens bool): the buckets each text falls in, for a
        distributed search (sftdata.cluster.dedup) that must agree with this index's."""
        keys = np.zeros((len(texts), self.bands), dtype=np.uint64)
        present = np.zeros(len(texts), dtype=bool)
        for i, row in enumerate(self._band_keys([self._tokens(text) for text in texts])):
            if row is not None:
                keys[i], present[i] = row, True
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
        hashes = [self._element_hashes(tokens) for tokens in token_lists]
        filled = [i for i, h in enumerate(hashes) if h]
        out: list[list[int] | None] = [None] * len(token_lists)
        if not filled:
            return out
        flat = np.fromiter((x for i in filled for x in hashes[i]), dtype=np.uint64)
        flat *= np.uint64(0x9E3779B97F4A7C15)  # spread the 32-bit CRCs over 64 bits
        starts = np.cumsum([0] + [len(hashes[i]) for i in filled[:-1]])
        with np.errstate(over="ignore"):
            signature = np.minimum.reduceat(self._a * flat + self._b, starts, axis=1)  # (bands*rows, texts)
            per_band = signature.T.reshape(len(filled), self.bands, self.rows)
            keys = (per_band * self._mix).sum(axis=2, dtype=np.uint64)  # one 64-bit key per band
        for row, i in enumerate(filled):
            out[i] = keys[row].tolist()
        return out

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
