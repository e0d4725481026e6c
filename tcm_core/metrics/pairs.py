"""Streaming over all unordered pairs (a < b) of an ``EmbeddingSet``, block by block.

Nothing here ever holds the n x n similarity matrix: each block is ``rows x (n - i0)`` of the
upper triangle, sized to a memory budget, so 50,000 x 512 embeddings stay well under 4 GB.
The similarity matmul runs in torch (on the GPU when there is one); the per-pair counting runs
in fused numba kernels on the CPU (``_kernels``, on the samples sorted by class:
``sorted_set``, thresholds looked up on s: ``lookup_table``) and in torch tensor operations on
the device elsewhere (``device_pairs``). Under ``torchrun`` each rank streams its share of the
blocks (``_blocks`` deals them with ``sharded.owned``, for every pass here and in ``band``)
and every pass's results are combined exactly (``sharded``) before they are used.
Distances are float64 ``sqrt(2 - 2 s)`` of the float32 cosine similarity s, and the direct
``||a - b||`` where float32 cannot decide a comparison or that formula loses digits
(METHOD.md, "Conventions"). ``band`` counts a FAR band's curves in two passes with these pieces.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from tcm_core.metrics import _kernels, device_pairs, sharded
from tcm_core.metrics.inputs import EmbeddingSet

BLOCK_BYTES = 128 << 20  # bytes per step: the kernels' float32 similarity block, retrieval's query block
HIST_BINS = 1 << 18  # locating bins for exact quantiles: ~7.6e-6 wide in similarity
LUT_CELLS = 1 << 16  # cells of the kernels' threshold lookup table over s in [-1, 1]
GRID_LUT_CELLS = 1 << 18  # finer for the histograms' 16,385 grid points
WINDOW_PAD = 8  # bins either side of a located rank: covers float32 rounding up to d ~ 1000
WINDOW_CAPACITY = 1 << 16  # first guess of the values in the windows when no histogram sizes them


def distance_to_similarity(t) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    return 1.0 - t * t / 2.0


def negative_pair_count(class_sizes) -> int:
    """Number of unordered pairs with different labels."""
    sizes = np.asarray(class_sizes, dtype=np.int64)
    n = int(sizes.sum())
    return (n * n - int((sizes * sizes).sum())) // 2


def _block_rows(n: int) -> int:
    """Rows per block of the kernels' passes: a float32 similarity block of ``BLOCK_BYTES``."""
    return device_pairs.block_rows(n, 4, BLOCK_BYTES)


def _blocks(embeddings: torch.Tensor) -> Iterator[tuple]:
    """Yield ``(i0, sims)`` with ``sims (r, n - i0)`` = rows i0..i0+r against columns i0..n
    (the CPU kernels' path: ``device_pairs`` has its own blocks); the unordered pairs are the
    entries with local column > local row."""
    n = embeddings.shape[0]
    rows = _block_rows(n)
    for i0 in sharded.owned(range(0, n, rows)):  # this rank's blocks under torchrun (all alone)
        yield i0, embeddings[i0 : i0 + rows] @ embeddings[i0:].T


@dataclass(frozen=True, eq=False)
class SortedSet:
    """An ``EmbeddingSet``'s samples sorted by class, as the CPU kernels take them:
    ``embeddings`` float32 tensor, ``exact`` float64, ``codes`` int64, ``class_end (n,)`` one past
    the last sample of each sample's class, ``class_start (C + 1,)`` where each class begins."""

    embeddings: torch.Tensor
    exact: np.ndarray
    codes: np.ndarray
    class_end: np.ndarray
    class_start: np.ndarray

    def column_groups(self, i0: int) -> np.ndarray:
        """``(g, 3)`` rows ``(class, first, end)``: the columns i0..n by class."""
        start = self.class_start
        c = np.flatnonzero((start[1:] > i0) & (start[1:] > start[:-1]))
        return np.ascontiguousarray(np.stack([c, np.maximum(start[c], i0), start[c + 1]], axis=1))


_SORTED: "weakref.WeakKeyDictionary[EmbeddingSet, SortedSet]" = weakref.WeakKeyDictionary()


def sorted_set(es: EmbeddingSet) -> SortedSet:
    """The class-sorted copy of ``es`` (made once per set: the unordered pairs, and so every
    count and distance, are the same in any order)."""
    found = _SORTED.get(es)
    if found is None:
        codes = es.codes.cpu().numpy()
        order = np.argsort(codes, kind="stable")
        start = np.concatenate([[0], np.cumsum(es.class_sizes)]).astype(np.int64)
        sc = np.ascontiguousarray(codes[order], dtype=np.int64)
        found = SortedSet(es.embeddings[torch.from_numpy(order)].contiguous(),
                          np.ascontiguousarray(es.exact[order]), sc, start[sc + 1], start)
        _SORTED[es] = found
    return found


def lookup_table(thresholds: np.ndarray, sim_tol: float, cells: int = LUT_CELLS) -> np.ndarray:
    """Per cell of s in [-1, 1] (``cells`` equal cells): the index of the first threshold
    accepting every s of the cell (``d <= t`` iff ``s >= 1 - t^2 / 2``), or -1 where a
    threshold lies within ``sim_tol`` of the cell, near s = 1 (where distances are refined)
    and at both ends (s may round past +-1): those pairs take the kernels' exact path."""
    s_k = distance_to_similarity(thresholds)
    lut = zone_table(s_k, s_k, sim_tol, cells)  # int16 where it can: a small table stays in cache
    lut[np.linspace(-1.0, 1.0, cells + 1)[1:] > _kernels.REFINE_SIMILARITY] = -1
    lut[0] = -1
    return lut


def zone_table(s_low: np.ndarray, s_high: np.ndarray, sim_tol: float, cells: int = LUT_CELLS) -> np.ndarray:
    """Like ``lookup_table`` for thresholds known only to lie in similarity intervals
    ``[s_low[k], s_high[k]]`` (descending in k, as distances ascend): -1 where a cell comes
    within ``sim_tol`` of an interval."""
    edges = np.linspace(-1.0, 1.0, cells + 1)
    lo, hi = np.sort(s_low), np.sort(s_high)
    pad = sim_tol + 1e-9  # and float64 rounding of the intervals and of the cell index
    above = lo.size - np.searchsorted(lo, edges[1:] + pad, side="right")  # wholly above the cell
    reach = hi.size - np.searchsorted(hi, edges[:-1] - pad, side="left")  # not wholly below it
    return np.where(above == reach, above, -1).astype(np.int16 if lo.size < 1 << 15 else np.int32)


USE_KERNELS = True  # tests switch this off to check the torch path against the kernels


def _use_kernels(es: EmbeddingSet) -> bool:
    return USE_KERNELS and es.embeddings.device.type == "cpu"


def _similarity_tolerance(es: EmbeddingSet) -> float:
    """Bound on the float32 rounding error of a cosine similarity in dimension d."""
    return max(1e-6, es.dim * 6e-8)


# ---------------------------------------------------------------- counts at thresholds

def accepted_counts(es: EmbeddingSet, thresholds, exact: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per class and threshold, the number of positive and of negative pairs with ``d <= t``.

    ``thresholds (k,)`` ascending distances (evenly spaced is fastest). Returns ``(pos, neg)``,
    each ``(classes, k)`` int64 over all classes (a negative pair counts for both its classes).
    ``exact``: pairs within float32 rounding of a threshold are decided in float64.
    """
    t = np.ascontiguousarray(thresholds, dtype=np.float64)
    tol = _similarity_tolerance(es) if exact else 0.0
    counts = _counts_kernel(es, t, tol) if _use_kernels(es) else device_pairs.counts(es, t, tol)  # (C, 2, k+1)
    counts = sharded.sum_over_ranks(counts)
    cum = counts.cumsum(axis=-1)[..., : t.size]
    return cum[:, 0], cum[:, 1]


def _inv_step(t: np.ndarray) -> float:
    span = t[-1] - t[0]
    return (t.size - 1) / span if span > 0 else 0.0


def _counts_kernel(es: EmbeddingSet, t: np.ndarray, tol: float) -> np.ndarray:
    c, srt, lut = len(es.classes), sorted_set(es), lookup_table(t, tol)
    out = np.zeros((_kernels.nb.get_num_threads(), 2 * c, t.size + 1), dtype=np.int64)
    for i0, sims in _blocks(srt.embeddings):
        _kernels.count_block(sims.numpy(), srt.exact, i0, srt.codes, srt.class_end, lut, t, _inv_step(t), tol, out)
    return out.sum(axis=0).reshape(c, 2, t.size + 1)


def grid_counts(es: EmbeddingSet, grid) -> tuple[np.ndarray, np.ndarray]:
    """``accepted_counts(es, grid, exact=False)`` laid out for reading many thresholds at once:
    ``(pos, neg)`` each ``(classes, g)``, a transposed view of a ``(g, classes)`` array (so the
    counts of all classes at one grid point are contiguous), int32 while counts fit."""
    t = np.ascontiguousarray(grid, dtype=np.float64)
    if not _use_kernels(es):
        pos, neg = accepted_counts(es, t, exact=False)
        return np.ascontiguousarray(pos.T).T, np.ascontiguousarray(neg.T).T
    dtype = np.int32 if es.n * (es.n - 1) // 2 < 2**31 else np.int64
    counts = []
    for side in _binned_counts(es, t, dtype):
        grid_major = np.empty((t.size + 1, side.shape[1]), dtype=dtype)  # (k + 1, classes)
        _kernels.cumulative_grid_major(side, grid_major)
        counts.append(grid_major[: t.size].T)
    return tuple(counts)


def _binned_counts(es: EmbeddingSet, t: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Per thread, class and threshold bin: positives and negatives first accepted there (not
    exact). Rows count their own class; each class's columns count the rows of earlier
    classes, class by class, so every write goes to one class's row of counts at a time.
    Under ``torchrun``, summed over threads and ranks (``threads_over_ranks``)."""
    c, srt, lut = len(es.classes), sorted_set(es), lookup_table(t, 0.0, GRID_LUT_CELLS)
    threads = _kernels.nb.get_num_threads()
    pos = np.zeros((threads, c, t.size + 1), dtype=dtype)
    neg = np.zeros_like(pos)
    bin_type = np.uint16 if t.size < 1 << 16 else np.int32
    buffer = np.empty(_block_rows(es.n) * es.n, dtype=bin_type)
    for i0, sims in _blocks(srt.embeddings):
        s = sims.numpy()
        bins = buffer[: s.size].reshape(s.shape)
        _kernels.binned_rows_block(s, srt.exact, i0, srt.codes, srt.class_end, lut, t, _inv_step(t), bins, pos, neg)
        _kernels.binned_columns_block(bins, i0, srt.column_groups(i0), neg)
    return threads_over_ranks(pos), threads_over_ranks(neg)


def threads_over_ranks(per_thread: np.ndarray) -> np.ndarray:
    """Per-thread counts ``(threads, ...)`` of this rank's blocks -> over all ranks: alone,
    unchanged; under ``torchrun``, ``(1, ...)`` summed over threads and ranks (same dtype)."""
    if sharded.rank_and_world()[1] == 1:
        return per_thread
    total = sharded.sum_over_ranks(per_thread.sum(axis=0, dtype=np.int64)[None])
    return total.astype(per_thread.dtype, copy=False)


# ---------------------------------------------------------------- exact quantiles

def negative_distance_quantiles(es: EmbeddingSet, qs) -> np.ndarray:
    """Exact ``numpy.quantile(d_neg, qs)`` (linear interpolation) over all negative pairs.

    Two passes: a fine histogram of negative distances locates the order statistics, then the
    distances inside those bins are collected and ranked exactly.
    """
    pos, lo, hi, ranks = _quantile_ranks(es, qs)
    hist = _negative_histogram(es)
    windows = _rank_windows(hist, ranks, _window_pad(es))
    return _quantiles(_collect_windows(es, windows, hist), pos, lo, hi)


def _quantile_ranks(es: EmbeddingSet, qs) -> tuple[np.ndarray, ...]:
    """``(positions, lower ranks, upper ranks, all ranks)`` of ``numpy.quantile``'s linear rule."""
    m = negative_pair_count(es.class_sizes)
    pos = np.asarray(qs, dtype=np.float64) * (m - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, m - 1)
    return pos, lo, hi, np.unique(np.concatenate([lo, hi]))  # 0-based, ascending distance


def _quantiles(collected, pos, lo, hi) -> np.ndarray:
    found = {}
    for below, values in collected:
        for r in np.concatenate([lo, hi]):
            if below <= r < below + values.size:
                found[int(r)] = float(values[r - below])
    missing = sorted({int(r) for r in np.concatenate([lo, hi]) if int(r) not in found})
    if missing:  # the locating histogram and the collection pass disagreed
        raise RuntimeError(f"internal error: quantile ranks {missing} not located")
    return np.array([found[a] + (p - a) * (found[b] - found[a]) for p, a, b in zip(pos, lo, hi)])


def _window_pad(es: EmbeddingSet, least: int = WINDOW_PAD) -> int:
    """Bins either side of a located rank that hold the pair of that exact rank: float32
    rounding (``tol``) moves the rank's value by up to tol and that pair by up to tol more."""
    return max(least, math.ceil(2.0 * _similarity_tolerance(es) / (2.0 / HIST_BINS)) + 1)


def _negative_histogram(es: EmbeddingSet) -> np.ndarray:
    """Counts of negative pairs per bin (``HIST_BINS`` bins, ascending distance), over all
    ranks: bins of the distance over [0, 2] on the device path, of ``1 - s`` on the kernels'."""
    if _use_kernels(es):  # bins of 1 - s: ascending distance, no square root per pair
        srt = sorted_set(es)
        out = np.zeros((_kernels.nb.get_num_threads(), HIST_BINS), dtype=np.int64)
        for i0, sims in _blocks(srt.embeddings):
            _kernels.negative_histogram_block(sims.numpy(), i0, srt.class_end, out)
        return sharded.sum_over_ranks(out.sum(axis=0))
    return sharded.sum_over_ranks(device_pairs.negative_histogram(es, HIST_BINS))


def _rank_windows(hist: np.ndarray, ranks: np.ndarray, pad: int = WINDOW_PAD) -> list[tuple[int, int]]:
    """Bin ranges (padded by ``pad`` bins, merged) holding the given ascending-distance ranks."""
    through = np.cumsum(hist)  # values in bins <= b
    windows = []
    for r in ranks:
        b = int(np.searchsorted(through, r, side="right"))  # first bin with through[b] > r
        windows.append((max(0, b - pad), min(HIST_BINS - 1, b + pad)))
    windows.sort()
    merged = [list(windows[0])]
    for lo, hi in windows[1:]:
        if lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _collect_windows(es: EmbeddingSet, windows, hist: np.ndarray | None = None) -> list[tuple[int, np.ndarray]]:
    """Per window: (negatives below it, its distances sorted ascending), over all ranks; one
    pass. ``hist`` (the locating histogram) sizes the kernels' buffers."""
    if _use_kernels(es):
        return sharded.merge_windows(_collect_windows_kernel(es, windows, hist))
    return sharded.merge_windows(device_pairs.collect_windows(es, windows, HIST_BINS))


def _collect_windows_kernel(es: EmbeddingSet, windows, hist: np.ndarray | None) -> list[tuple[int, np.ndarray]]:
    lo = np.array([w[0] for w in windows], dtype=np.int64)
    hi = np.array([w[1] for w in windows], dtype=np.int64)
    inside = WINDOW_CAPACITY if hist is None else int(sum(hist[a : b + 1].sum() for a, b in windows))
    capacity = inside + 1024  # what one thread may find (all of them); + slack
    while True:
        gaps, counts, window, values = _window_pass(es, lo, hi, capacity)
        if counts.max() <= capacity:
            break
        capacity = int(counts.max())  # the first guess was short (no histogram given): again
    return split_windows(len(windows), gaps, counts, window, values)


def split_windows(n_windows: int, gaps, counts, window, values) -> list[tuple[int, np.ndarray]]:
    """The window pass's per-thread finds -> per window (negatives below it, its distances
    sorted ascending), this rank's blocks only (``sharded.merge_windows`` combines the ranks)."""
    out = []
    before = 0
    for w in range(n_windows):
        found = np.concatenate([values[t, : counts[t]][window[t, : counts[t]] == w] for t in range(counts.size)])
        before += int(gaps[:, w].sum())
        out.append((before, np.sort(found)))
        before += found.size
    return out


def _window_pass(es: EmbeddingSet, lo: np.ndarray, hi: np.ndarray, capacity: int):
    srt = sorted_set(es)
    threads = _kernels.nb.get_num_threads()
    gaps = np.zeros((threads, lo.size), dtype=np.int64)
    counts = np.zeros(threads, dtype=np.int64)
    window = np.empty((threads, capacity), dtype=np.int32)
    values = np.empty((threads, capacity), dtype=np.float64)
    for i0, sims in _blocks(srt.embeddings):
        _kernels.window_block(sims.numpy(), srt.exact, i0, srt.class_end, HIST_BINS, lo, hi, gaps, counts,
                              window, values)
    return gaps, counts, window, values
