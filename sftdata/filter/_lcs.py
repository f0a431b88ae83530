"""numba kernels for one pair of texts: ROUGE-L F, the LCS a pair needs, PPJoin prefix lengths,
the signature bound on shared elements, and the bit-parallel LCS. ``_kernels.py`` builds the
index on them (see ``rouge.py`` for the method and the guarantees).

Why numba: the work is tight integer loops over small arrays (posting lists, 64-bit LCS words)
that neither numpy vectorization nor rapidfuzz expresses (rapidfuzz's LCS works on strings or
hashable sequences one pair at a time, so each pair would cross the Python boundary). numba
compiles these loops to machine code with plain IEEE float64 arithmetic (no fastmath), so the
F-measure below rounds exactly as rouge-score's Python expression does. ``cache=True`` keeps the
compiled code on disk; a cold compile of both modules takes a few seconds, and numpy calls are
kept to np.empty on purpose (each other numpy constructor or argsort adds its own compile time).
"""

from __future__ import annotations

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
ONE = np.uint64(1)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@njit(cache=True)
def fscore(lcs: int, a: int, b: int) -> float:
    """rouge-score's ``_score_lcs(target (a tokens), prediction (b tokens))`` F-measure, same rounding."""
    if lcs == 0:  # also covers an empty side: rouge-score returns 0 there
        return 0.0
    p = lcs / b
    r = lcs / a
    return 2 * p * r / (p + r)


@njit(cache=True)
def lcs_needed(a: int, b: int, t: float) -> int:
    """The smallest LCS whose F (exact float expression) is > t; more than min(a, b) means none.

    Mathematically F = 2L/(a+b), so L > t(a+b)/2; start one below that and step up with the
    real expression so ties at the threshold fall exactly as they do in rouge-score.
    """
    m = min(a, b)
    lcs = int(t * (a + b) / 2.0) - 1
    if lcs < 1:
        lcs = 1
    while lcs <= m and not fscore(lcs, a, b) > t:
        lcs += 1
    return lcs


@njit(cache=True)
def prefix_length(n: int, t: float) -> int:
    """How many of a text's rarest elements to index / probe (PPJoin prefix).

    Two texts with LCS >= L share at least L elements; with every text's elements in one global
    order, two sets sharing >= L elements share one among the first n-L+1 of each. L must be the
    smallest LCS any partner length b can need: lcs_needed(n, b) grows with b (the exact F falls
    by far more than float rounding as b grows), so it is the one at the smallest b for which a
    pair can exceed t at all (lcs_needed(n, b) <= b), found by stepping up from t*n/(2-t).
    """
    b = max(1, int(t * n / (2.0 - t)) - 2)
    while b <= n:
        need = lcs_needed(n, b, t)
        if need <= b:
            return n - need + 1
        b += 1
    return 0  # no partner length lets F exceed t (t = 1, or n = 0)


@njit(cache=True)
def fill_prefix_table(table, first: int, t: float) -> None:
    for n in range(first, table.shape[0]):
        table[n] = prefix_length(n, t)


@njit(cache=True)
def int64s(n, value):
    """np.full without its own compiled overload (every numpy constructor used adds compile time)."""
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = value
    return out


@njit(cache=True)
def sort_by_key(elements, key, out, s):
    """Write ``elements`` ordered by ``key[element]`` (keys are unique) to ``out[s:]``; ``elements``
    may be that very slice of ``out``.

    Hand-written (shell sort; texts are short) and element-wise copies instead of numpy's argsort
    and slice assignment: those two alone add over ten seconds to numba's cold compile.
    """
    n = elements.shape[0]
    keys = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[s + i] = elements[i]
        keys[i] = key[elements[i]]
    gap = n // 2
    while gap > 0:
        for i in range(gap, n):
            k, v = keys[i], out[s + i]
            j = i
            while j >= gap and keys[j - gap] > k:
                keys[j] = keys[j - gap]
                out[s + j] = out[s + j - gap]
                j -= gap
            keys[j] = k
            out[s + j] = v
        gap = 1 if gap == 2 else gap * 5 // 11


@njit(cache=True)
def popcount(x):
    x = x - ((x >> ONE) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@njit(cache=True)
def lcs_length(pm, local, toks, s: int, e: int, a: int, vec) -> int:
    """LCS of the query (bit-parallel over its ``a`` positions) and ``toks[s:e]``.

    Allison-Dix / Hyyro: V starts all ones; per token y_j with match mask M,
    U = V & M; V = (V + U) | (V - U). The LCS is the number of zero bits among the first a.
    ``pm[local[tok]]`` is the match mask of tok (row 0: no match); ``vec`` is scratch.
    """
    nb = pm.shape[1]
    if nb == 1:
        v = ~np.uint64(0)
        for k in range(s, e):
            u = v & pm[local[toks[k]], 0]
            v = (v + u) | (v - u)
        ones = popcount(v) if a == 64 else popcount(v & ((ONE << np.uint64(a)) - ONE))
        return a - np.int64(ones)
    for w in range(nb):
        vec[w] = ~np.uint64(0)
    for k in range(s, e):
        row = local[toks[k]]
        carry = np.uint64(0)
        for w in range(nb):
            v = vec[w]
            u = v & pm[row, w]
            tmp = v + carry
            c1 = np.uint64(1) if tmp < v else np.uint64(0)
            add = tmp + u
            c2 = np.uint64(1) if add < tmp else np.uint64(0)
            carry = c1 | c2
            vec[w] = add | (v - u)
    ones = 0
    for w in range(nb):
        bits = a - 64 * w
        v = vec[w]
        if bits < 64:
            v = v & ((ONE << np.uint64(bits)) - ONE)
        ones += np.int64(popcount(v))
    return a - ones


@njit(cache=True)
def signature(xs):
    """64 buckets, bit set when one of the text's elements hashes there."""
    sig = np.uint64(0)
    for k in range(xs.shape[0]):
        sig |= ONE << ((np.uint64(xs[k]) * GOLDEN) >> np.uint64(58))
    return sig


@njit(cache=True)
def bucket_levels(xs):
    """``levels[m]``: the buckets where at least m+1 of the query's elements fall.

    For a stored text with signature y, sum(popcount(y & levels[m])) = the sum of the query's
    bucket counts over the buckets y occupies >= shared elements >= LCS.
    """
    counts = int64s(64, 0)
    for k in range(xs.shape[0]):
        counts[(np.uint64(xs[k]) * GOLDEN) >> np.uint64(58)] += 1
    depth = 1
    for w in range(64):
        depth = max(depth, counts[w])
    levels = np.empty(depth, dtype=np.uint64)
    for m in range(depth):
        levels[m] = 0
    for w in range(64):
        for m in range(counts[w]):
            levels[m] |= ONE << np.uint64(w)
    return levels
