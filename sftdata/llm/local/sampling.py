"""Next-token sampling for the local engine: greedy, temperature, top-p, per row of a batch.

Why not transformers' logits processors: top-p there sorts the whole 49k-token vocabulary for every
row at every step, about 40% of the generation time of a 135M model on a CPU. Here the nucleus is
looked for among the ``k`` most likely tokens first (``torch.topk``); the answer is exact whenever the
nucleus fits inside them, which is checked per row, and only the rows where it does not fit (flat
distributions, rare) fall back to the full sort. ``top_p >= 1`` needs no order at all: a two-level
inverse CDF (per-chunk sums, then within one chunk) avoids a cumulative sum over the vocabulary.
The logits are read a few times in all (one float copy, scaled, exponentiated and summed in place):
with 32 rows that is 6 MB a pass, and passes, not arithmetic, are what the sampler costs.

Randomness is counter-based: the uniform draw of a row at step ``t`` is a hash of (seed, t). A row's
tokens therefore depend only on its own seed and logits, never on which other rows share its batch
or in what order they were drawn, and one uniform per row and step (inverse-CDF sampling) replaces
a multinomial call per row.
"""

from __future__ import annotations

import numpy as np
import torch

DEFAULT_TOP_K = 128  # nucleus candidates looked at before falling back to the full sort
CHUNK = 128  # vocabulary chunk of the two-level inverse CDF (top_p >= 1)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def uniforms(seeds: np.ndarray, steps: int | np.ndarray) -> torch.Tensor:
    """One uniform in [0, 1) per seed for decoding step ``steps`` (splitmix64 of (seed, step)).

    ``steps`` is one step for all seeds or one per seed.
    """
    steps = np.broadcast_to(np.asarray(steps, dtype=np.uint64), np.shape(seeds))
    # uint64 arrays wrap around on overflow, which is what the hash wants
    z = np.atleast_1d(seeds).astype(np.uint64) * _GOLDEN + (steps + np.uint64(1)) * _MIX2
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return torch.from_numpy((z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0))


def sample(logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, u: torch.Tensor,
           k: int = DEFAULT_TOP_K) -> torch.Tensor:
    """Pick one token per row of ``logits`` [B, V] (any float dtype; not modified).

    ``temperature`` [B]: 0 means greedy. ``top_p`` [B]: keep the smallest set of most likely tokens
    whose mass reaches ``top_p`` (a token is kept when the mass strictly before it is below top_p;
    the most likely token always is). ``u`` [B]: the row's uniform draw in [0, 1).
    Probabilities are ``exp(l/T - max) / Z`` with ``Z`` summed in float64 over the vocabulary.
    """
    sampled = (temperature > 0).nonzero().flatten()
    if sampled.numel() == 0:
        return logits.argmax(dim=-1)
    every_row = sampled.numel() == logits.shape[0]
    tokens = torch.empty(logits.shape[0], dtype=torch.long) if every_row else logits.argmax(dim=-1)
    rows = logits if every_row else logits[sampled]
    scaled = rows.to(torch.float32, copy=True)  # our own copy: scaled, then exponentiated in place
    scaled.div_(temperature[sampled, None].to(torch.float32))
    top_p, u = top_p[sampled].to(torch.float64), u[sampled].to(torch.float64)
    nucleus = (top_p < 1.0).nonzero().flatten()
    full = (top_p >= 1.0).nonzero().flatten()
    candidates = None
    if nucleus.numel():  # before the in-place pass below destroys the order information
        candidates = torch.topk(scaled if full.numel() == 0 else scaled[nucleus], min(k, scaled.shape[-1]))
    if candidates is not None and full.numel() == 0:
        peak = candidates.values[:, :1]
    else:
        peak = scaled.max(dim=-1, keepdim=True).values
    mass = scaled.sub_(peak).exp_()  # unnormalized probabilities, in place
    total = mass.sum(dim=-1, dtype=torch.float64)
    picked = torch.empty(sampled.numel(), dtype=torch.long)
    if nucleus.numel():
        picked[nucleus] = _sample_nucleus(mass, total, candidates.indices, nucleus, full.numel() == 0,
                                          top_p[nucleus], u[nucleus], rows, temperature[sampled])
    if full.numel():
        picked[full] = _sample_unordered(mass[full], total[full], u[full])
    tokens[sampled] = picked
    return tokens


def _sample_nucleus(mass: torch.Tensor, total: torch.Tensor, top: torch.Tensor, rows: torch.Tensor,
                    all_rows: bool, top_p: torch.Tensor, u: torch.Tensor, logits: torch.Tensor,
                    temperature: torch.Tensor) -> torch.Tensor:
    """Draw for ``rows`` of ``mass`` whose top-k token ids are ``top`` (most likely first).

    ``logits``/``temperature`` are the rows' inputs, for the rare full sort (by scaled logit, as topk).
    """
    mass_rows = mass if all_rows else mass[rows]
    total = total[rows]
    probs = mass_rows.gather(1, top).to(torch.float64) / total[:, None]
    cdf = probs.cumsum(dim=-1)
    # the nucleus fits in the top k when their mass reaches top_p: every later token has at least
    # that much mass before it, so it would be cut anyway
    fits = cdf[:, -1] >= top_p
    picked = torch.empty(probs.shape[0], dtype=torch.long)
    if bool(fits.any()):
        at = fits.nonzero().flatten()
        position = _pick_in_sorted(probs[at], cdf[at], top_p[at], u[at])
        picked[at] = top[at].gather(1, position[:, None])[:, 0]
    if not bool(fits.all()):
        at = (~fits).nonzero().flatten()
        source = rows[at]
        scaled = logits[source].to(torch.float32) / temperature[source, None].to(torch.float32)
        order = torch.sort(scaled, dim=-1, descending=True, stable=True).indices
        probs = mass_rows[at].gather(1, order).to(torch.float64) / total[at, None]
        position = _pick_in_sorted(probs, probs.cumsum(dim=-1), top_p[at], u[at])
        picked[at] = order.gather(1, position[:, None])[:, 0]
    return picked


def _pick_in_sorted(probs: torch.Tensor, cdf: torch.Tensor, top_p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Position in ``probs`` (sorted descending, [R, n]; ``cdf`` its cumsum) drawn from the nucleus."""
    keep = (cdf - probs) < top_p[:, None]
    keep[:, 0] = True
    return _invert((probs * keep).cumsum(dim=-1), u)


def _invert(cdf: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """First position whose (unnormalized) CDF exceeds ``u * total``: one categorical draw per row."""
    target = (u * cdf[:, -1])[:, None]
    index = (cdf <= target).sum(dim=-1)
    # float rounding at the very top end can point one past the last token with mass
    last = (cdf < cdf[:, -1:]).sum(dim=-1)
    return torch.minimum(index, last)


def _sample_unordered(mass: torch.Tensor, total: torch.Tensor, u: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """Inverse CDF over the vocabulary in its own order, in two levels: which chunk, then where in it."""
    rows, vocab = mass.shape
    padded = -(-vocab // chunk) * chunk
    if padded != vocab:
        mass = torch.cat([mass, mass.new_zeros((rows, padded - vocab))], dim=1)
    chunks = mass.view(rows, padded // chunk, chunk)
    chunk_cdf = chunks.sum(dim=-1, dtype=torch.float64).cumsum(dim=-1)
    target = u * total
    which = torch.minimum((chunk_cdf <= target[:, None]).sum(dim=-1),
                          (chunk_cdf < chunk_cdf[:, -1:]).sum(dim=-1))  # a chunk with mass
    before = torch.where(which > 0, chunk_cdf.gather(1, (which - 1).clamp(min=0)[:, None])[:, 0], 0.0)
    inside = chunks[torch.arange(rows), which].to(torch.float64).cumsum(dim=-1) + before[:, None]
    position = torch.minimum((inside <= target[:, None]).sum(dim=-1), (inside < inside[:, -1:]).sum(dim=-1))
    return which * chunk + position
