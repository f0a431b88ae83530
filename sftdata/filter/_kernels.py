"""numba kernels of the ROUGE-L novelty index (see ``rouge.py`` for the method and the guarantees,
``_lcs.py`` for the per-pair kernels and why numba).

All ids are dense ints. Documents are stored concatenated: ``toks[start[d]:start[d+1]]`` holds
document d's token ids in text order (for the LCS) and ``elms[...]`` the same slice's *elements*
((token, k-th occurrence) pairs, so multiset overlap is set overlap) sorted by ``key``.

Posting lists are keyed by (element, length of the stored text): a query at prefix position i
only needs stored lengths b whose required LCS still fits after i (need(a, b) <= a - i), and the
deep prefix positions, where the frequent elements with long lists sit, admit only a narrow band
of b. A list is a contiguous run in one ``pool`` (scanning is the hot loop; a linked list's cache
misses made it 50x slower): list l owns rows ``pool[l_off[l] : l_off[l] + l_len[l]]``, room for
``l_cap[l]``; a full run moves to the end of the pool with twice the room. A row is
``(doc << 32 | position, signature of the text)``, sorted by position within a list;
``(element << 20 | b) -> list`` is an open-addressing hash table.
``state`` holds the counters (``S_*``). ``run_batch`` returns to Python when arrays must grow or
the ranking is due for a refresh; Python does that and calls it again.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._lcs import (
    GOLDEN,
    ONE,
    bucket_levels,
    fscore,
    int64s,
    lcs_length,
    lcs_needed,
    popcount,
    signature,
    sort_by_key,
)

(S_DOCS, S_TOKS, S_POOL_USED, S_STAMP, S_NEXT_FREEZE, S_VOCAB, S_VERIFIED, S_FREEZES, S_SCANNED,
 S_LISTS) = range(10)
MODE_CHECK, MODE_ADD, MODE_CHECK_ADD = 0, 1, 2
DONE, NEED_ROOM, NEED_FREEZE = 0, 1, 2
MAX_TOKENS = (1 << 20) - 1  # a text's length is 20 bits of a list key


@njit(cache=True)
def _slot_of(h_key, list_key):
    """Slot of ``list_key`` in the hash table, or of the empty slot where it would go."""
    mask = h_key.shape[0] - 1
    h = np.int64((np.uint64(list_key) * GOLDEN) >> np.uint64(32)) & mask
    while h_key[h] != -1 and h_key[h] != list_key:
        h = (h + 1) & mask
    return h


@njit(cache=True)
def rehash(l_key, n_lists, capacity):
    h_key = int64s(capacity, -1)
    h_val = int64s(capacity, 0)
    for lst in range(n_lists):
        h = _slot_of(h_key, l_key[lst])
        h_key[h] = l_key[lst]
        h_val[h] = lst
    return h_key, h_val


@njit(cache=True)
def _query(xt, xs, t, plen, toks, elms, start, e_bits, h_key, h_val, l_off, l_len, pool, seen, slot,
           cand, stamp, local, inx, vec, state):
    """Best (score, doc) among the documents the filters let through; doc -1 when none.

    ``xt``: query tokens in text order; ``xs``: its elements sorted by key.
    """
    a = xt.shape[0]
    nb = max(1, (a + 63) // 64)
    d = 0
    for i in range(a):
        if local[xt[i]] == 0:
            d += 1
            local[xt[i]] = d
    pm = np.empty((d + 1, nb), dtype=np.uint64)
    for r in range(d + 1):
        for w in range(nb):
            pm[r, w] = 0
    for i in range(a):
        inx[xs[i]] = 1
    for i in range(a):
        pm[local[xt[i]], i >> 6] |= ONE << np.uint64(i & 63)
    # the stored lengths b that can exceed t, and the LCS each needs
    b_max = plen.shape[0] - 1  # the longest text seen
    if t > 0.0:
        b_max = min(int(a * (2.0 - t) / t) + 2, b_max)
    bs = np.empty(b_max, dtype=np.int64)
    need = np.empty(b_max, dtype=np.int64)
    nbs = 0
    for b in range(1, b_max + 1):
        lmin = lcs_needed(a, b, t)
        if lmin <= min(a, b):
            bs[nbs] = b
            need[nbs] = lmin
            nbs += 1
    levels = bucket_levels(xs)
    # PPJoin: count the shared elements met in both prefixes, then bound what can follow
    n_cand = 0
    scanned = 0
    for i in range(plen[a]):
        e = np.int64(xs[i])
        for q in range(nbs):
            b, lmin = bs[q], need[q]
            if lmin > a - i:  # the first shared element must come before a - lmin ...
                continue
            if not (e_bits[e] >> np.uint64(b & 63)) & ONE:  # no list (e, b): skip the hash lookup
                continue
            h = _slot_of(h_key, (e << 20) | b)
            if h_key[h] == -1:
                continue
            lst = h_val[h]
            off = l_off[lst]
            scanned += l_len[lst]
            for k in range(off, off + l_len[lst]):
                v = pool[k, 0]
                j = v & 0xFFFFFFFF
                if j > b - lmin:  # ... on both sides (a list is sorted by position)
                    break
                # the signature bound: rules out nearly every pair before touching its text
                sig = np.uint64(pool[k, 1])
                bound = 0
                for m in range(levels.shape[0]):
                    bound += np.int64(popcount(sig & levels[m]))
                if bound < lmin:
                    continue
                doc = v >> 32
                if seen[doc] != stamp:
                    seen[doc] = stamp
                    slot[doc] = n_cand
                    cand[n_cand, 0] = doc
                    cand[n_cand, 1] = 0
                    cand[n_cand, 4] = lmin
                    n_cand += 1
                c = slot[doc]
                cand[c, 1] += 1
                cand[c, 2] = i
                cand[c, 3] = j
    best = -1.0
    best_doc = -1
    verified = 0
    for c in range(n_cand):
        doc = cand[c, 0]
        b = start[doc + 1] - start[doc]
        # LCS <= shared elements; those not met all come after the last one met, on both sides
        lmin = cand[c, 4]
        if cand[c, 1] + min(a - 1 - cand[c, 2], b - 1 - cand[c, 3]) < lmin:
            continue
        # count those shared elements (PPJoin verification; stops once lmin is out of reach)
        shared = cand[c, 1]
        s0 = start[doc]
        k = cand[c, 3] + 1
        while k < b and shared < lmin and shared + (b - k) >= lmin:
            if inx[elms[s0 + k]]:
                shared += 1
            k += 1
        if shared < lmin:
            continue
        lcs = lcs_length(pm, local, toks, start[doc], start[doc + 1], a, vec)
        verified += 1
        score = fscore(lcs, a, b)
        if score > best or (score == best and doc < best_doc):
            best = score
            best_doc = doc
    for i in range(a):
        local[xt[i]] = 0
        inx[xs[i]] = 0
    state[S_VERIFIED] += verified
    state[S_SCANNED] += scanned
    return best, best_doc


@njit(cache=True)
def _room_needed(xs, n, plen, h_key, h_val, l_len, l_cap):
    """Pool space the postings of a new text need (full runs move with twice the room)."""
    room = 0
    for j in range(plen[n]):
        h = _slot_of(h_key, (np.int64(xs[j]) << 20) | n)
        if h_key[h] == -1:
            room += 1
        else:
            lst = h_val[h]
            if l_len[lst] == l_cap[lst]:
                room += 2 * l_cap[lst]
    return room


@njit(cache=True)
def _append(list_key, entry, sig, h_key, h_val, l_key, l_off, l_len, l_cap, pool, state):
    h = _slot_of(h_key, list_key)
    used = state[S_POOL_USED]
    if h_key[h] == -1:
        lst = state[S_LISTS]
        state[S_LISTS] = lst + 1
        h_key[h] = list_key
        h_val[h] = lst
        l_key[lst] = list_key
        l_off[lst] = used
        l_len[lst] = 0
        l_cap[lst] = 1
        used += 1
    lst = h_val[h]
    if l_len[lst] == l_cap[lst]:
        for k in range(l_len[lst]):
            pool[used + k, 0] = pool[l_off[lst] + k, 0]
            pool[used + k, 1] = pool[l_off[lst] + k, 1]
        l_off[lst] = used
        l_cap[lst] *= 2
        used += l_cap[lst]
    pos = l_off[lst] + l_len[lst]  # keep the list sorted by position (stable)
    while pos > l_off[lst] and (pool[pos - 1, 0] & 0xFFFFFFFF) > (entry & 0xFFFFFFFF):
        pool[pos, 0] = pool[pos - 1, 0]
        pool[pos, 1] = pool[pos - 1, 1]
        pos -= 1
    pool[pos, 0] = entry
    pool[pos, 1] = sig
    l_len[lst] += 1
    state[S_POOL_USED] = used


@njit(cache=True)
def _add(xt, xs, plen, df, toks, elms, start, e_bits, h_key, h_val, l_key, l_off, l_len, l_cap, pool,
         state):
    """Store a text; the caller made sure every array has room."""
    doc, nt = state[S_DOCS], state[S_TOKS]
    a = xt.shape[0]
    for k in range(a):
        toks[nt + k] = xt[k]
        elms[nt + k] = xs[k]
        df[xs[k]] += 1
    start[doc + 1] = nt + a
    sig = np.int64(signature(xs))
    for j in range(plen[a]):
        e_bits[xs[j]] |= ONE << np.uint64(a & 63)
        _append((np.int64(xs[j]) << 20) | a, (doc << 32) | j, sig, h_key, h_val, l_key, l_off, l_len, l_cap,
                pool, state)
    state[S_DOCS] = doc + 1
    state[S_TOKS] = nt + a


@njit(cache=True)
def refreeze(key, df, plen, elms, start, e_bits, state):
    """Re-rank elements by current document frequency (rarest first) and rebuild the lists.

    The order must be the same for every stored text and every query, so it only changes here,
    all at once; doing it at each doubling of the index keeps the total cost linear.
    Returns the new hash table, list arrays and pool.
    """
    for e in range(state[S_VOCAB]):
        key[e] = (df[e] << 32) | e
        e_bits[e] = 0
    n_docs = state[S_DOCS]
    entries = 0
    for doc in range(n_docs):
        s, e = start[doc], start[doc + 1]
        sort_by_key(elms[s:e], key, elms, s)
        entries += plen[e - s]
    capacity = 1024
    while capacity < 2 * entries + 2:
        capacity *= 2
    h_key = int64s(capacity, -1)
    h_val = int64s(capacity, 0)
    size = entries + 1024
    l_key = int64s(size, 0)
    l_len = int64s(size, 0)
    l_off = int64s(size, 0)
    l_cap = int64s(size, 0)
    n_lists = 0
    for doc in range(n_docs):  # count the entries of each list
        s, n = start[doc], start[doc + 1] - start[doc]
        for j in range(plen[n]):
            list_key = (np.int64(elms[s + j]) << 20) | n
            e_bits[elms[s + j]] |= ONE << np.uint64(n & 63)
            h = _slot_of(h_key, list_key)
            if h_key[h] == -1:
                h_key[h] = list_key
                h_val[h] = n_lists
                l_key[n_lists] = list_key
                n_lists += 1
            l_len[h_val[h]] += 1
    used = 0
    for lst in range(n_lists):
        l_off[lst] = used
        l_cap[lst] = l_len[lst] + (l_len[lst] >> 2) + 1  # some slack before the first move
        used += l_cap[lst]
        l_len[lst] = 0
    pool = np.empty((used + used // 2 + 1024, 2), dtype=np.int64)
    # fill position by position so that every list comes out sorted by position: texts ordered by
    # prefix length (longest first), position j visits only those whose prefix reaches j
    longest = 0
    for doc in range(n_docs):
        longest = max(longest, plen[start[doc + 1] - start[doc]])
    reaching = int64s(longest + 2, 0)  # reaching[j]: texts with prefix > j
    for doc in range(n_docs):
        reaching[plen[start[doc + 1] - start[doc]]] += 1
    for j in range(longest - 1, -1, -1):
        reaching[j] += reaching[j + 1]
    order = int64s(n_docs, 0)
    sigs = int64s(n_docs, 0)
    for doc in range(n_docs):
        sigs[doc] = np.int64(signature(elms[start[doc]:start[doc + 1]]))
    fill = int64s(longest + 1, 0)  # texts with prefix p go to order[reaching[p+1]:reaching[p]]
    for p in range(longest + 1):
        fill[p] = reaching[p + 1]
    for doc in range(n_docs):
        p = plen[start[doc + 1] - start[doc]]
        if p > 0:
            fill[p - 1] -= 1
            order[fill[p - 1]] = doc
    for j in range(longest):
        for q in range(reaching[j + 1]):
            doc = order[q]
            s, n = start[doc], start[doc + 1] - start[doc]
            lst = h_val[_slot_of(h_key, (np.int64(elms[s + j]) << 20) | n)]
            pool[l_off[lst] + l_len[lst], 0] = (doc << 32) | j
            pool[l_off[lst] + l_len[lst], 1] = sigs[doc]
            l_len[lst] += 1
    state[S_POOL_USED] = used
    state[S_LISTS] = n_lists
    state[S_FREEZES] += 1
    return h_key, h_val, l_key, l_off, l_len, l_cap, pool


@njit(cache=True)
def run_batch(first, mode, bt, be, boff, t, key, df, plen, toks, elms, start, e_bits, h_key, h_val, l_key,
              l_off, l_len, l_cap, pool, seen, slot, cand, local, inx, vec, state, out_score, out_doc,
              out_novel):
    """Process texts ``first``.. in order: check, add, or check-and-add-when-novel (``MODE_*``).

    Text i has tokens ``bt[boff[i]:boff[i+1]]`` and elements ``be[...]`` (same length).
    A text is novel when no stored text scores F > t against it. Returns (next text, status,
    pool room wanted): DONE, or NEED_ROOM / NEED_FREEZE before text ``next`` is looked at.
    """
    for i in range(first, boff.shape[0] - 1):
        xt = bt[boff[i]:boff[i + 1]]
        xe = be[boff[i]:boff[i + 1]]
        a = xt.shape[0]
        xs = np.empty(a, dtype=np.int32)
        sort_by_key(xe, key, xs, 0)
        if mode != MODE_CHECK:  # make room first, so that an interruption costs no query
            if state[S_DOCS] >= state[S_NEXT_FREEZE]:
                return i, NEED_FREEZE, 0
            room = _room_needed(xs, a, plen, h_key, h_val, l_len, l_cap)
            lists = state[S_LISTS] + plen[a]
            if (state[S_POOL_USED] + room > pool.shape[0] or lists > l_key.shape[0]
                    or 2 * lists > h_key.shape[0]):
                return i, NEED_ROOM, room
        best, best_doc = -1.0, -1
        if mode != MODE_ADD:
            state[S_STAMP] += 1
            if state[S_STAMP] >= 2_000_000_000:
                for k in range(seen.shape[0]):
                    seen[k] = 0
                state[S_STAMP] = 1
            best, best_doc = _query(xt, xs, t, plen, toks, elms, start, e_bits, h_key, h_val, l_off, l_len,
                                    pool, seen, slot, cand, state[S_STAMP], local, inx, vec, state)
        novel = not best > t
        out_score[i] = max(best, 0.0)
        out_doc[i] = best_doc
        out_novel[i] = novel
        if mode == MODE_ADD or (mode == MODE_CHECK_ADD and novel):
            _add(xt, xs, plen, df, toks, elms, start, e_bits, h_key, h_val, l_key, l_off, l_len, l_cap, pool,
                 state)
    return boff.shape[0] - 1, DONE, 0
