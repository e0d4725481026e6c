"""Fused CPU kernels (numba) for the per-pair work of ``pairs``: one pass over a block of the
upper triangle instead of a chain of full-size tensor operations.

Each kernel takes a similarity block ``sims (r, m)`` whose local row i and local column j are
samples ``i0 + i`` and ``i0 + j`` (so the unordered pairs a < b are exactly ``j > i``) and the
float64 embeddings ``emb (n, d)`` for exact distances where float32 similarity is not enough. Parallel loops write per-thread rows of
the output (no races); callers sum over threads.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

# Above this cosine similarity, sqrt(2 - 2 s) from a float32 s loses digits (d < ~0.063):
# such pairs get the direct float64 ||a - b|| instead, exactly 0 for duplicates.
REFINE_SIMILARITY = 0.998


@nb.njit(inline="always")
def exact_distance(emb, a, b):
    """||a - b|| from the float64 embeddings, as METHOD.md defines it."""
    acc = 0.0
    for k in range(emb.shape[1]):
        diff = emb[a, k] - emb[b, k]
        acc += diff * diff
    return math.sqrt(acc)


@nb.njit(inline="always")
def pair_distance(s, emb, a, b):
    if s < REFINE_SIMILARITY:
        return math.sqrt(max(2.0 - 2.0 * np.float64(s), 0.0))
    return exact_distance(emb, a, b)


@nb.njit(inline="always")
def _first_accepting(d, thresholds, t0, inv_step):
    """Index of the first threshold with d <= t (len(thresholds) if none); exact comparisons."""
    k = thresholds.size
    b = int(min(max(math.ceil((d - t0) * inv_step), 0.0), float(k)))
    while b < k and d > thresholds[b]:
        b += 1
    while b > 0 and d <= thresholds[b - 1]:
        b -= 1
    return b


@nb.njit(parallel=True, cache=True, nogil=True)
def count_block(sims, emb, i0, codes, thresholds, inv_step, sim_tol, out):
    """out[thread, 2*c + is_negative, b] += pairs of class c first accepted at threshold b.

    A pair whose float32-derived distance lies within the similarity's rounding error
    (``sim_tol``, 0 to skip) of a threshold is decided on its exact float64 distance.
    """
    r, m = sims.shape
    k = thresholds.size
    t0 = thresholds[0]
    for i in nb.prange(r):
        tid = nb.get_thread_id()
        rc = codes[i0 + i]
        for j in range(i + 1, m):
            s = sims[i, j]
            d = pair_distance(s, emb, i0 + i, i0 + j)
            b = _first_accepting(d, thresholds, t0, inv_step)
            if sim_tol > 0 and s < REFINE_SIMILARITY:
                tol = sim_tol / max(d, 1e-3)
                if (b < k and thresholds[b] - d <= tol) or (b > 0 and d - thresholds[b - 1] <= tol):
                    d = exact_distance(emb, i0 + i, i0 + j)
                    b = _first_accepting(d, thresholds, t0, inv_step)
            cc = codes[i0 + j]
            if cc == rc:
                out[tid, 2 * rc, b] += 1
            else:
                out[tid, 2 * rc + 1, b] += 1
                out[tid, 2 * cc + 1, b] += 1


@nb.njit(inline="always")
def distance_bin(d, nbins):
    return min(int(d * (nbins / 2.0)), nbins - 1)


@nb.njit(parallel=True, cache=True, nogil=True)
def negative_histogram_block(sims, emb, i0, codes, out):
    """out[thread, bin] += negative pairs whose distance falls in ``bin`` of [0, 2]."""
    r, m = sims.shape
    nbins = out.shape[1]
    for i in nb.prange(r):
        tid = nb.get_thread_id()
        rc = codes[i0 + i]
        for j in range(i + 1, m):
            if codes[i0 + j] != rc:
                out[tid, distance_bin(pair_distance(sims[i, j], emb, i0 + i, i0 + j), nbins)] += 1


@nb.njit(inline="always")
def _window_of(b, lo_bins, hi_bins):
    """Window holding bin b, else -1 - (number of windows entirely below b); windows are
    sorted and disjoint."""
    for w in range(lo_bins.size):
        if b < lo_bins[w]:
            return -1 - w
        if b <= hi_bins[w]:
            return w
    return -1 - lo_bins.size


@nb.njit(parallel=True, cache=True, nogil=True)
def window_block(sims, emb, i0, codes, nbins, lo_bins, hi_bins, below, inside):
    """Per row and window w: negatives in bins below window w (``below[i, w]``) and inside it
    (``inside[i, w]``)."""
    r, m = sims.shape
    nw = lo_bins.size
    for i in nb.prange(r):
        rc = codes[i0 + i]
        for j in range(i + 1, m):
            if codes[i0 + j] != rc:
                d = pair_distance(sims[i, j], emb, i0 + i, i0 + j)
                w = _window_of(distance_bin(d, nbins), lo_bins, hi_bins)
                if w >= 0:
                    inside[i, w] += 1
                    start = w + 1
                else:
                    start = -1 - w
                for v in range(start, nw):
                    below[i, v] += 1


@nb.njit(parallel=True, cache=True, nogil=True)
def gather_window(sims, emb, i0, codes, nbins, lo_bins, hi_bins, offsets, values):
    """Write the distances counted in ``inside[i, w]`` at ``values[offsets[i, w]:]``."""
    r, m = sims.shape
    for i in nb.prange(r):
        rc = codes[i0 + i]
        p = offsets[i].copy()
        for j in range(i + 1, m):
            if codes[i0 + j] != rc:
                d = pair_distance(sims[i, j], emb, i0 + i, i0 + j)
                w = _window_of(distance_bin(d, nbins), lo_bins, hi_bins)
                if w >= 0:
                    values[p[w]] = exact_distance(emb, i0 + i, i0 + j)
                    p[w] += 1
