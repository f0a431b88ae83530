"""An incremental ROUGE-L novelty index: exactly the Self-Instruct / Alpaca decisions, far faster.

The reference filter scores a new instruction with ``RougeScorer(["rougeL"])`` against every
instruction kept so far and drops it when any ``fmeasure > threshold`` (0.7; a score of exactly
0.7 is kept). :class:`RougeIndex` makes the same decisions without scoring most pairs:

* tokens are interned as integer ids; a text's *elements* are (token, k-th occurrence) pairs, so
  the multiset overlap of two texts, an upper bound on their LCS, is a plain set overlap;
* for lengths a and b, F = 2L/(a+b) with L <= min(a, b): pairs whose lengths cannot reach the
  threshold are skipped, and for the rest the smallest LCS that would exceed it is found with
  rouge-score's own float expression (p = L/len_pred, r = L/len_target, F = 2*p*r/(p+r)), so ties
  at the threshold fall the same way (L=7, lengths 8 and 12: 0.7000000000000001, dropped);
* PPJoin-style prefix filtering: elements are ordered rarest first (by document frequency,
  re-ranked at each doubling of the index), each stored text is indexed under its first
  ``n - L_min + 1`` elements only, and a query probes only its own prefix; pairs that share no
  prefix element cannot share L_min elements. Lists are keyed by (element, stored length) and
  sorted by position, so a probe reads only the lengths and positions that can still reach the
  LCS that pair needs (positional filter);
* a 64-bit signature of each stored text's elements, kept in its posting entries, bounds the
  overlap before the text itself is touched; survivors get PPJoin's verification (count the
  shared elements, stopping once the needed LCS is out of reach);
* the few pairs left are scored with a bit-parallel LCS (Allison-Dix / Hyyro, 64 tokens per
  machine word) compiled with numba (see ``_kernels.py`` for why numba). At N=4000 realistic
  instructions the index scores a few hundred pairs where the scan scores six and a half million.

Texts longer than ``MAX_COMPARED_TOKENS`` tokens are compared on their first that many tokens.

Every bound is an upper bound on the LCS, so a pruned pair cannot score above the threshold:
the decisions are exactly the scan's (tests/unit/test_rouge.py checks them against rouge-score,
ties included; bench/dedup.py at N=2000 and 4000).

Which most-similar text is reported: the exact top-1 over everything cannot be pruned, so
:attr:`RougeMatch.score` / :attr:`RougeMatch.most_similar` are the best among the stored texts
the filters let through to scoring (ties: the earliest stored). For a text that is *not* novel
this is the exact maximum over the whole index (every pruned pair scores <= threshold, below the
one that exceeded it). For a novel text it is a lower bound of the true maximum, and 0.0 / None
when no stored text came close enough to be scored; :meth:`RougeIndex.nearest` gives the exact one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from . import _kernels as K
from ._lcs import fill_prefix_table
from .tokenize import get_tokenizer

__all__ = ["RougeIndex", "RougeMatch", "rouge_l_f", "lcs_length", "MAX_COMPARED_TOKENS"]

# The LCS of two texts costs their lengths multiplied: two 1 MB instructions (the length rule off)
# took 24 s a pair. Only the first MAX_COMPARED_TOKENS tokens of a text are compared; every text
# within it (any instruction the length rule lets through: 150 words) is scored exactly.
MAX_COMPARED_TOKENS = 2048


@dataclass(frozen=True)
class RougeMatch:
    novel: bool
    score: float
    most_similar: str | None


def lcs_length(tokens_a: list, tokens_b: list) -> int:
    """Length of the longest common subsequence (plain dynamic programming, for reference use)."""
    if not tokens_a or not tokens_b:
        return 0
    prev = [0] * (len(tokens_b) + 1)
    for x in tokens_a:
        cur = [0]
        for j, y in enumerate(tokens_b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _f_of_lcs(lcs: int, len_a: int, len_b: int) -> float:
    """rouge-score's F-measure for an LCS of ``lcs`` tokens between texts of ``len_a`` and ``len_b`` tokens."""
    if lcs == 0:
        return 0.0
    precision = lcs / len_b
    recall = lcs / len_a
    return 2 * precision * recall / (precision + recall)


def rouge_l_f(tokens_a: list, tokens_b: list) -> float:
    """ROUGE-L F of two token lists, bit for bit as ``rouge_scorer._score_lcs(target=a, prediction=b)``.

    (The expression is symmetric in floating point too: 2*p is exact and * and + commute.)
    """
    if not tokens_a or not tokens_b:
        return 0.0
    return _f_of_lcs(lcs_length(tokens_a, tokens_b), len(tokens_a), len(tokens_b))


def _grown(array: np.ndarray, size: int, arange: bool = False) -> np.ndarray:
    """``array`` with room for at least ``size`` rows (capacity doubles)."""
    if array.shape[0] >= size:
        return array
    new_size = max(size, 2 * array.shape[0], 64)
    if arange:
        new = np.arange(new_size, dtype=array.dtype)
    else:
        new = np.zeros((new_size, *array.shape[1:]), dtype=array.dtype)
    new[: array.shape[0]] = array
    return new


class RougeIndex:
    """Texts kept so far; tells whether a new text is novel (no stored text has ROUGE-L F > threshold).

    ``tokenizer``: ``"rouge"`` (rouge-score's, so decisions equal the reference filter's
    exactly), ``"cjk"`` (one token per CJK character) or ``"auto"`` (per text: rouge-score's
    tokens for text without CJK characters, identical to "rouge" there; CJK-aware otherwise).
    See the module docstring for which most-similar text is reported.
    """

    def __init__(self, tokenizer: str = "auto", threshold: float = 0.7) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        self.threshold = float(threshold)
        self._tokenize = get_tokenizer(tokenizer)
        self._vocab: dict = {}  # token str -> id; (token id, k) -> element id for k-th repeats
        self._texts: list[str] = []
        self._state = np.zeros(10, dtype=np.int64)
        self._state[K.S_NEXT_FREEZE] = 32
        self._key = np.arange(0, dtype=np.int64)
        self._df = np.zeros(0, dtype=np.int64)
        # posting lists keyed by (element, stored length): hash table, list arrays, one pool;
        # bit (b % 64) of _e_bits[e] is set when some list (e, b) exists
        self._e_bits = np.zeros(0, dtype=np.uint64)
        self._h_key = np.full(1024, -1, dtype=np.int64)
        self._h_val = np.zeros(1024, dtype=np.int64)
        self._l_key = np.zeros(256, dtype=np.int64)
        self._l_off = np.zeros(256, dtype=np.int64)
        self._l_len = np.zeros(256, dtype=np.int64)
        self._l_cap = np.zeros(256, dtype=np.int64)
        self._pool = np.zeros((1024, 2), dtype=np.int64)
        self._local = np.zeros(0, dtype=np.int32)  # query scratch: token -> row of its match mask
        self._inx = np.zeros(0, dtype=np.int32)  # query scratch: 1 for the query's elements
        self._toks = np.zeros(0, dtype=np.int32)
        self._elms = np.zeros(0, dtype=np.int32)
        self._start = np.zeros(1, dtype=np.int64)
        self._seen = np.zeros(0, dtype=np.int32)  # per stored text: query stamp when last met
        self._slot = np.zeros(0, dtype=np.int32)  # ... and its row in _cand for that query
        self._cand = np.zeros((0, 5), dtype=np.int32)  # candidates: doc, shared met, last i, j, LCS needed
        self._plen = np.zeros(0, dtype=np.int32)
        self._vec = np.zeros(1, dtype=np.uint64)

    # ------------------------------------------------------------ public API

    def __len__(self) -> int:
        return len(self._texts)

    @property
    def stats(self) -> dict:
        """Counters: texts stored, entries in the posting lists probed (a probe stops early within a
        list), pairs scored with the LCS kernel, re-rankings of the elements."""
        return {"texts": len(self._texts), "postings_scanned": int(self._state[K.S_SCANNED]),
                "pairs_scored": int(self._state[K.S_VERIFIED]), "rerankings": int(self._state[K.S_FREEZES])}

    def add(self, text: str) -> None:
        """Store a text unconditionally (for example a seed task)."""
        self._run(K.MODE_ADD, [text])

    def add_many(self, texts: Iterable[str]) -> None:
        """``add`` each text (one call into the compiled loop)."""
        self._run(K.MODE_ADD, list(texts))

    def check(self, text: str) -> RougeMatch:
        """Is ``text`` novel against the stored texts? Stores nothing."""
        return self._run(K.MODE_CHECK, [text])[0]

    def is_novel(self, text: str) -> bool:
        """No stored text scores ROUGE-L F > threshold against ``text``."""
        return self.check(text).novel

    def check_and_add(self, text: str) -> RougeMatch:
        """Check, and store the text when it is novel (the Self-Instruct / Alpaca loop)."""
        return self._run(K.MODE_CHECK_ADD, [text])[0]

    def check_and_add_many(self, texts: Iterable[str]) -> list[RougeMatch]:
        """``check_and_add`` on each text in order (one call into the compiled loop)."""
        return self._run(K.MODE_CHECK_ADD, list(texts))

    def nearest(self, text: str, among: int | None = None) -> RougeMatch:
        """The exact most similar stored text (among the first ``among`` stored, when given) (highest ROUGE-L F, ties: the earliest stored) and its score.

        :meth:`check` reports the best of the pairs it had to score, a lower bound for a novel text;
        this scores in order of the shared-element bound (an upper bound on the LCS) and stops when
        no unscored text can beat the best (nor tie it from a later stored text), so a query costs one
        vectorized pass over the stored elements and a few LCS. ``novel`` is as :meth:`check` would say.
        """
        tokens = self._tokenize(text)[:MAX_COMPARED_TOKENS]
        _ids, elements = self._encode(tokens, intern=False)
        size = len(tokens)
        stored = len(self._texts) if among is None else min(among, len(self._texts))
        if not size or not stored:
            return RougeMatch(novel=True, score=0.0, most_similar=None)
        bounds = self._shared_element_bounds(elements, size, stored)
        best, best_doc = 0.0, -1
        # stable: equal bounds stay in stored order
        for doc in np.argsort(-bounds, kind="stable").tolist():
            bound = float(bounds[doc])
            # ties go to the earliest stored: a bound equal to the best can only tie it, and the docs after
            # this one at that bound come later -- near-copies no longer cost an LCS each
            if bound < best or bound == 0.0 or (bound == best and doc > best_doc):
                break
            score = rouge_l_f(self._tokenize(self._texts[doc])[:MAX_COMPARED_TOKENS], tokens)
            if score > best or (score == best and score > 0 and doc < best_doc):
                best, best_doc = score, doc
        similar = self._texts[best_doc] if best_doc >= 0 else None
        return RougeMatch(novel=best <= self.threshold, score=best, most_similar=similar)

    def _shared_element_bounds(self, elements: list[int], size: int, stored: int) -> np.ndarray:
        """Per stored text (the first ``stored``), the F an LCS of all its shared elements would give.

        The LCS is at most the shared elements, and the F is computed by rouge_l_f's own expression
        (numpy's float64 operations round as Python's), so no score exceeds its bound even by a rounding.
        Vectorized over the stored elements: one pass, not a set intersection per stored text.
        """
        member = np.zeros(len(self._vocab) + 1, dtype=np.bool_)
        member[np.asarray(elements, dtype=np.int64)] = True
        start = self._start[: stored + 1]
        hits = np.concatenate(([0], np.cumsum(member[self._elms[: start[-1]]], dtype=np.int64)))
        shared = (hits[start[1:]] - hits[start[:-1]]).astype(np.float64)
        lengths = np.diff(start).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = shared / size
            recall = shared / lengths
            bounds = 2 * precision * recall / (precision + recall)
        bounds[shared == 0] = 0.0
        return bounds

    # ------------------------------------------------------------ internals

    def _encode(self, tokens: list[str], intern: bool) -> tuple[list[int], list[int]]:
        """Token ids (text order) and element ids; unknown ones map to a sentinel when not interning."""
        vocab = self._vocab
        if intern:
            ids = [vocab.setdefault(tok, len(vocab)) for tok in tokens]
        else:
            sentinel = len(vocab)  # no stored text holds it: it can never match
            ids = [vocab.get(tok, sentinel) for tok in tokens]
        if len(set(ids)) == len(ids):
            return ids, ids
        counts: dict[int, int] = {}
        elements = []
        for tid in ids:
            k = counts.get(tid, 0) + 1
            counts[tid] = k
            if k == 1:
                elements.append(tid)
            elif intern:
                elements.append(vocab.setdefault((tid, k), len(vocab)))
            else:
                elements.append(vocab.get((tid, k), len(vocab)))
        return ids, elements

    def _run(self, mode: int, texts: list[str]) -> list[RougeMatch]:
        intern = mode != K.MODE_CHECK
        flat_t: list[int] = []
        flat_e: list[int] = []
        offsets = [0]
        for text in texts:
            tokens = self._tokenize(text)[:MAX_COMPARED_TOKENS]
            ids, elements = self._encode(tokens, intern)
            flat_t += ids
            flat_e += elements
            offsets.append(len(flat_t))
        count = len(texts)
        bt = np.array(flat_t, dtype=np.int32)
        be = np.array(flat_e, dtype=np.int32)
        boff = np.array(offsets, dtype=np.int64)
        self._reserve(count, len(flat_t), max(np.diff(boff).max(initial=0), 1))
        out_score = np.zeros(count, dtype=np.float64)
        out_doc = np.full(count, -1, dtype=np.int64)
        out_novel = np.zeros(count, dtype=np.bool_)
        before = int(self._state[K.S_DOCS])
        first = 0
        while True:
            first, status, room = K.run_batch(
                first, mode, bt, be, boff, self.threshold, self._key, self._df, self._plen, self._toks,
                self._elms, self._start, self._e_bits, self._h_key, self._h_val, self._l_key, self._l_off, self._l_len,
                self._l_cap, self._pool, self._seen, self._slot, self._cand, self._local, self._inx, self._vec,
                self._state, out_score, out_doc, out_novel)
            if status == K.DONE:
                break
            if status == K.NEED_FREEZE:
                (self._h_key, self._h_val, self._l_key, self._l_off, self._l_len, self._l_cap,
                 self._pool) = K.refreeze(self._key, self._df, self._plen, self._elms, self._start, self._e_bits,
                                          self._state)
                self._state[K.S_NEXT_FREEZE] *= 2
            else:
                self._make_room(int(room), int(self._plen[int(boff[first + 1] - boff[first])]))
        results = []
        for i, text in enumerate(texts):
            novel = bool(out_novel[i])
            doc = int(out_doc[i])
            similar = self._texts[doc] if doc >= 0 else None
            if mode == K.MODE_ADD or (mode == K.MODE_CHECK_ADD and novel):
                self._texts.append(text)
            results.append(RougeMatch(novel=novel, score=float(out_score[i]), most_similar=similar))
        assert len(self._texts) == int(self._state[K.S_DOCS]) >= before
        return results

    def _reserve(self, texts: int, tokens: int, longest: int) -> None:
        """Grow the arrays so that ``texts`` more texts with ``tokens`` tokens in all fit."""
        vocab = len(self._vocab) + 1  # + the sentinel id
        self._state[K.S_VOCAB] = len(self._vocab)
        self._key = _grown(self._key, vocab, arange=True)  # a new element's rank: df 0, by id
        self._df = _grown(self._df, vocab)
        self._local = _grown(self._local, vocab)
        self._inx = _grown(self._inx, vocab)
        self._e_bits = _grown(self._e_bits, vocab)
        need_tokens = int(self._state[K.S_TOKS]) + tokens
        self._toks = _grown(self._toks, need_tokens)
        self._elms = _grown(self._elms, need_tokens)
        need_docs = int(self._state[K.S_DOCS]) + texts
        self._start = _grown(self._start, need_docs + 1)
        self._seen = _grown(self._seen, need_docs)
        self._slot = _grown(self._slot, need_docs)
        if self._cand.shape[0] < need_docs:
            self._cand = np.zeros((self._seen.shape[0], 5), dtype=np.int32)
        if self._plen.shape[0] <= longest:
            first = self._plen.shape[0]
            self._plen = _grown(self._plen, longest + 1)
            fill_prefix_table(self._plen, first, self.threshold)
        blocks = (longest + 63) // 64
        if self._vec.shape[0] < blocks:
            self._vec = np.zeros(blocks, dtype=np.uint64)

    def _make_room(self, room: int, new_lists: int) -> None:
        """Grow the pool, the list arrays and the hash table for one more text."""
        used, lists = int(self._state[K.S_POOL_USED]), int(self._state[K.S_LISTS]) + new_lists
        self._pool = _grown(self._pool, used + room)
        for name in ("_l_key", "_l_off", "_l_len", "_l_cap"):
            setattr(self, name, _grown(getattr(self, name), lists))
        capacity = self._h_key.shape[0]
        while 2 * lists > capacity:
            capacity *= 2
        if capacity > self._h_key.shape[0]:
            self._h_key, self._h_val = K.rehash(self._l_key, int(self._state[K.S_LISTS]), capacity)
