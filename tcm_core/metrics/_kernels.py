"""Fused CPU kernels (numba) for the per-pair work of ``pairs``: one pass over a block of the
upper triangle instead of a chain of full-size tensor operations.

Each kernel takes a similarity block ``sims (r, m)`` whose local row i and local column j are
samples ``i0 + i`` and ``i0 + j`` (so the unordered pairs a < b are exactly ``j > i``) and the
float64 embeddings ``emb (n, d)`` for exact distances where float32 similarity is not enough.
Samples are sorted by class (``class_end[a]``: one past the last sample of a's class), so a
row's positives are the columns before its class end and its negatives all the columns after:
no per-pair label lookups. Parallel loops write per-thread rows of the output (no races);
callers sum over threads.

Thresholds are decided on the similarity s itself through a lookup table over s
(``lookup_table``): a cell of the table lies farther than the float32 rounding error from every
threshold (then it holds the threshold index), or it is marked -1 and the pair takes the slow
exact path (``_exact_bin``: float64 distance, the exact ``||a - b||`` where it matters).
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


@nb.njit(inline="always")
def _exact_bin(s, emb, a, b, thresholds, t0, inv_step, sim_tol):
    """First threshold index with d <= t, exact: pairs within float32 rounding of a threshold
    (``sim_tol`` in similarity, 0 to skip) are decided on their float64 ``||a - b||``."""
    k = thresholds.size
    d = pair_distance(s, emb, a, b)
    first = _first_accepting(d, thresholds, t0, inv_step)
    if sim_tol > 0 and s < REFINE_SIMILARITY:
        tol = sim_tol / max(d, 1e-3)
        if (first < k and thresholds[first] - d <= tol) or (first > 0 and d - thresholds[first - 1] <= tol):
            first = _first_accepting(exact_distance(emb, a, b), thresholds, t0, inv_step)
    return first


@nb.njit(inline="always")
def _cell(s, scale, cells):
    q = int((np.float64(s) + 1.0) * scale)
    return min(max(q, 0), cells - 1)


@nb.njit(inline="always")
def _bin(s, emb, a, b, lut, scale, thresholds, t0, inv_step, sim_tol):
    first = lut[_cell(s, scale, lut.size)]
    if first < 0:
        first = _exact_bin(s, emb, a, b, thresholds, t0, inv_step, sim_tol)
    return first


@nb.njit(parallel=True, cache=True, nogil=True)
def count_block(sims, emb, i0, codes, class_end, lut, thresholds, inv_step, sim_tol, out):
    """out[thread, 2*c + is_negative, b] += pairs of class c first accepted at threshold b."""
    r, m = sims.shape
    t0 = thresholds[0]
    scale = lut.size / 2.0
    for i in nb.prange(r):
        tid = nb.get_thread_id()
        a = i0 + i
        rc = codes[a]
        end = min(class_end[a] - i0, m)
        for j in range(i + 1, end):
            out[tid, 2 * rc, _bin(sims[i, j], emb, a, i0 + j, lut, scale, thresholds, t0, inv_step, sim_tol)] += 1
        for j in range(end, m):
            b = _bin(sims[i, j], emb, a, i0 + j, lut, scale, thresholds, t0, inv_step, sim_tol)
            out[tid, 2 * rc + 1, b] += 1
            out[tid, 2 * codes[i0 + j] + 1, b] += 1


@nb.njit(parallel=True, cache=True, nogil=True)
def binned_rows_block(sims, emb, i0, codes, class_end, lut, thresholds, inv_step, bins, pos, neg):
    """Row side of the per-class histograms: ``bins[i, j]`` = threshold bin of pair (i, j > i);
    ``pos/neg[thread, class of row i, bin]`` += its positives / negatives (not exact)."""
    r, m = sims.shape
    t0 = thresholds[0]
    scale = lut.size / 2.0
    for i in nb.prange(r):
        tid = nb.get_thread_id()
        a = i0 + i
        rc = codes[a]
        end = min(class_end[a] - i0, m)
        for j in range(i + 1, end):
            b = _bin(sims[i, j], emb, a, i0 + j, lut, scale, thresholds, t0, inv_step, 0.0)
            bins[i, j] = b
            pos[tid, rc, b] += 1
        for j in range(end, m):
            b = _bin(sims[i, j], emb, a, i0 + j, lut, scale, thresholds, t0, inv_step, 0.0)
            bins[i, j] = b
            neg[tid, rc, b] += 1


@nb.njit(parallel=True, cache=True, nogil=True)
def binned_columns_block(bins, i0, groups, neg):
    """Column side: ``groups (g, 3)`` rows ``(class, first, end)`` of the block's columns by
    class (global sample indices); every block row before a group's class is its negative."""
    r = bins.shape[0]
    for g in nb.prange(groups.shape[0]):
        tid = nb.get_thread_id()
        c, first, end = groups[g, 0], groups[g, 1], groups[g, 2]
        for i in range(min(r, first - i0)):
            for j in range(first - i0, end - i0):
                neg[tid, c, bins[i, j]] += 1


@nb.njit(inline="always")
def similarity_bin(s, nbins):
    """Bin of ``[0, 2]`` in ``1 - s`` (ascending distance), ``nbins`` bins."""
    return min(max(int((1.0 - np.float64(s)) * (nbins / 2.0)), 0), nbins - 1)


@nb.njit(parallel=True, cache=True, nogil=True)
def negative_histogram_block(sims, i0, class_end, out):
    """out[thread, bin] += negative pairs whose ``similarity_bin`` is ``bin``."""
    r, m = sims.shape
    nbins = out.shape[1]
    for i in nb.prange(r):
        tid = nb.get_thread_id()
        for j in range(class_end[i0 + i] - i0, m):
            out[tid, similarity_bin(sims[i, j], nbins)] += 1


@nb.njit(parallel=True, cache=True, nogil=True)
def window_block(sims, emb, i0, class_end, nbins, lo_bins, hi_bins, gaps, counts, window, values):
    """Negatives around windows of bins (sorted, disjoint): per thread, ``gaps[thread, w]`` +=
    those in bins between window w - 1 and window w, and the exact distances inside a window
    appended to ``values[thread]`` (``window[thread]`` its window, ``counts[thread]`` how many
    were found, which may exceed the capacity: the caller checks)."""
    r, m = sims.shape
    for i in nb.prange(r):
        tid = nb.get_thread_id()
        a = i0 + i
        for j in range(class_end[a] - i0, m):
            _window_step(tid, sims[i, j], emb, a, i0 + j, nbins, lo_bins, hi_bins, gaps, counts, window, values)


@nb.njit(inline="always")
def _window_step(tid, s, emb, a, b, nbins, lo_bins, hi_bins, gaps, counts, window, values):
    """One negative pair of ``window_block``."""
    q = similarity_bin(s, nbins)
    if q < lo_bins[0]:
        gaps[tid, 0] += 1
    elif q <= hi_bins[hi_bins.size - 1]:
        w = 0
        while q > hi_bins[w]:
            w += 1
        if q < lo_bins[w]:
            gaps[tid, w] += 1
        else:
            p = counts[tid]
            if p < values.shape[1]:
                values[tid, p] = exact_distance(emb, a, b)
                window[tid, p] = w
            counts[tid] = p + 1


@nb.njit(parallel=True, cache=True, nogil=True)
def similarity_histogram_block(sims, i0, class_end, counts, sums):
    """``counts/sums[thread, 0 positives | 1 negatives, bin]`` += pairs and their s, bins of
    equal width over s in [-1, 1] (s clipped to it)."""
    r, m = sims.shape
    nbins = counts.shape[2]
    for i in nb.prange(r):
        tid = nb.get_thread_id()
        end = min(class_end[i0 + i] - i0, m)
        for j in range(i + 1, m):
            v = min(max(np.float64(sims[i, j]), -1.0), 1.0)
            b = min(int((v + 1.0) * (nbins / 2.0)), nbins - 1)
            side = 0 if j < end else 1
            counts[tid, side, b] += 1
            sums[tid, side, b] += v


@nb.njit(parallel=True, cache=True, nogil=True)
def pair_histogram_block(sims, i0, class_end, pos, neg):
    """pos/neg[thread, bin] += positive / negative pairs whose ``similarity_bin`` is ``bin``."""
    r, m = sims.shape
    nbins = neg.shape[1]
    for i in nb.prange(r):
        tid = nb.get_thread_id()
        end = min(class_end[i0 + i] - i0, m)
        for j in range(i + 1, end):
            pos[tid, similarity_bin(sims[i, j], nbins)] += 1
        for j in range(end, m):
            neg[tid, similarity_bin(sims[i, j], nbins)] += 1


@nb.njit(inline="always")
def _defer(tid, a, b, s, deferred, pairs_s, found):
    p = found[tid]
    if p < deferred.shape[1]:
        deferred[tid, p, 0] = a
        deferred[tid, p, 1] = b
        pairs_s[tid, p] = s
    found[tid] = p + 1


@nb.njit(parallel=True, cache=True, nogil=True)
def band_block(sims, emb, i0, codes, class_end, nbins, lo_bins, hi_bins, gaps, counts, window, values,
               zones, out, deferred, pairs_s, found):
    """``window_block`` and ``count_block`` in one pass, before the thresholds are known exactly:
    ``zones`` is a lookup table over s built from the intervals that hold them; a pair in a cell
    of an interval is deferred (``deferred[thread, p] = (a, b)``, its s in ``pairs_s``) and
    decided once the thresholds are known (``count_deferred``)."""
    r, m = sims.shape
    scale = zones.size / 2.0
    for i in nb.prange(r):
        tid = nb.get_thread_id()
        a = i0 + i
        rc = codes[a]
        end = min(class_end[a] - i0, m)
        for j in range(i + 1, end):
            s = sims[i, j]
            b = zones[_cell(s, scale, zones.size)]
            if b >= 0:
                out[tid, 2 * rc, b] += 1
            else:
                _defer(tid, a, i0 + j, s, deferred, pairs_s, found)
        for j in range(end, m):
            s = sims[i, j]
            b = zones[_cell(s, scale, zones.size)]
            if b >= 0:
                out[tid, 2 * rc + 1, b] += 1
                out[tid, 2 * codes[i0 + j] + 1, b] += 1
            else:
                _defer(tid, a, i0 + j, s, deferred, pairs_s, found)
            _window_step(tid, s, emb, a, i0 + j, nbins, lo_bins, hi_bins, gaps, counts, window, values)


@nb.njit(parallel=True, cache=True, nogil=True)
def count_deferred(deferred, pairs_s, found, emb, codes, lut, thresholds, inv_step, sim_tol, out):
    """The deferred pairs of ``band_block``, counted as ``count_block`` counts its pairs."""
    t0 = thresholds[0]
    scale = lut.size / 2.0
    for t in range(found.size):
        for p in nb.prange(found[t]):
            tid = nb.get_thread_id()
            a, b = deferred[t, p, 0], deferred[t, p, 1]
            first = _bin(pairs_s[t, p], emb, a, b, lut, scale, thresholds, t0, inv_step, sim_tol)
            rc, cc = codes[a], codes[b]
            if rc == cc:
                out[tid, 2 * rc, first] += 1
            else:
                out[tid, 2 * rc + 1, first] += 1
                out[tid, 2 * cc + 1, first] += 1


@nb.njit(parallel=True, cache=True, nogil=True)
def cumulative_grid_major(counts, out):
    """``out[k, c] = sum over threads and bins b <= k of counts[thread, c, b]``: per-thread
    ``(threads, C, K)`` counts to cumulative ``(K, C)``, 16 classes (one cache line) at a time."""
    threads, c, k = counts.shape
    for chunk in nb.prange((c + 15) // 16):
        c0 = chunk * 16
        c1 = min(c0 + 16, c)
        running = np.zeros(16, dtype=out.dtype)
        for b in range(k):
            for cc in range(c0, c1):
                for t in range(threads):
                    running[cc - c0] += counts[t, cc, b]
                out[b, cc] = running[cc - c0]
