"""Streaming over all unordered pairs (a < b) of an ``EmbeddingSet``, block by block.

Nothing here ever holds the n x n similarity matrix: each block is ``rows x (n - i0)`` of the
upper triangle, sized to a memory budget, so 50,000 x 512 embeddings stay well under 4 GB.
The similarity matmul runs in torch (on the GPU when there is one); the per-pair counting runs
in fused numba kernels on the CPU (``_kernels``) and in torch tensor operations on the device
elsewhere (``device_pairs``). Under ``torchrun`` each rank streams its share of the blocks and
the results are combined exactly (``sharded``).
Distances are float64 ``sqrt(2 - 2 s)`` of the float32 cosine similarity s, and the direct
``||a - b||`` for close pairs where that formula loses digits (METHOD.md, "Conventions").
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from tcm_core.metrics import _kernels, device_pairs, sharded
from tcm_core.metrics.inputs import EmbeddingSet

BLOCK_BYTES = 128 << 20  # similarity block per step (torch path: ~10x that in temporaries)
HIST_BINS = 1 << 18  # locating bins for exact quantiles: ~7.6e-6 wide in similarity


def similarity_to_distance(s) -> np.ndarray:
    return np.sqrt(np.clip(2.0 - 2.0 * np.asarray(s, dtype=np.float64), 0.0, None))


def distance_to_similarity(t) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    return 1.0 - t * t / 2.0


def negative_pair_count(class_sizes) -> int:
    """Number of unordered pairs with different labels."""
    sizes = np.asarray(class_sizes, dtype=np.int64)
    n = int(sizes.sum())
    return (n * n - int((sizes * sizes).sum())) // 2


def upper_blocks(es: EmbeddingSet, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple]:
    """Yield ``(i0, sims)`` with ``sims (r, n - i0)`` = rows i0..i0+r against columns i0..n;
    the unordered pairs are the entries with local column > local row."""
    n = es.n
    per_row = (4 if es.embeddings.device.type == "cpu" else 40) * n
    # at least ~8 blocks, so that the skipped lower triangle saves about half the matmul
    rows = int(max(1, min(block_bytes // per_row, max(64, -(-n // 8)))))
    for i0 in sharded.owned(range(0, n, rows)):
        yield i0, es.embeddings[i0 : i0 + rows] @ es.embeddings[i0:].T


USE_KERNELS = True  # tests switch this off to check the torch path against the kernels


def _use_kernels(es: EmbeddingSet) -> bool:
    return USE_KERNELS and es.embeddings.device.type == "cpu"


def _codes_np(es: EmbeddingSet) -> np.ndarray:
    return es.codes.cpu().numpy()


def _similarity_tolerance(es: EmbeddingSet) -> float:
    """Bound on the float32 rounding error of a cosine similarity in dimension d."""
    return max(1e-6, es.dim * 6e-8)


def _kernel_args(es: EmbeddingSet):
    return es.exact, es.codes.numpy()


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


def _counts_kernel(es: EmbeddingSet, t: np.ndarray, tol: float) -> np.ndarray:
    span = t[-1] - t[0]
    inv_step = (t.size - 1) / span if span > 0 else 0.0
    c = len(es.classes)
    out = np.zeros((_kernels.nb.get_num_threads(), 2 * c, t.size + 1), dtype=np.int64)
    emb, codes = _kernel_args(es)
    for i0, sims in upper_blocks(es):
        _kernels.count_block(sims.numpy(), emb, i0, codes, t, inv_step, tol, out)
    return out.sum(axis=0).reshape(c, 2, t.size + 1)


# ---------------------------------------------------------------- exact quantiles

def negative_distance_quantiles(es: EmbeddingSet, qs) -> np.ndarray:
    """Exact ``numpy.quantile(d_neg, qs)`` (linear interpolation) over all negative pairs.

    Two passes: a fine histogram of negative distances locates the order statistics, then the
    distances inside those bins are collected and ranked exactly.
    """
    qs = np.asarray(qs, dtype=np.float64)
    m = negative_pair_count(es.class_sizes)
    pos = qs * (m - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, m - 1)
    ranks = np.unique(np.concatenate([lo, hi]))  # 0-based, ascending distance
    windows = _rank_windows(_negative_histogram(es), ranks)
    found = {}
    for below, values in _collect_windows(es, windows):
        for r in ranks:
            if below <= r < below + values.size:
                found[int(r)] = float(values[r - below])
    missing = [int(r) for r in ranks if int(r) not in found]
    if missing:  # the locating histogram and the collection pass disagreed
        raise RuntimeError(f"internal error: quantile ranks {missing} not located")
    return np.array([found[a] + (p - a) * (found[b] - found[a]) for p, a, b in zip(pos, lo, hi)])


def _negative_histogram(es: EmbeddingSet) -> np.ndarray:
    """Counts of negative pairs per distance bin (``HIST_BINS`` bins over [0, 2])."""
    if _use_kernels(es):
        out = np.zeros((_kernels.nb.get_num_threads(), HIST_BINS), dtype=np.int64)
        emb, codes = _kernel_args(es)
        for i0, sims in upper_blocks(es):
            _kernels.negative_histogram_block(sims.numpy(), emb, i0, codes, out)
        return sharded.sum_over_ranks(out.sum(axis=0))
    return sharded.sum_over_ranks(device_pairs.negative_histogram(es, HIST_BINS))


def _rank_windows(hist: np.ndarray, ranks: np.ndarray) -> list[tuple[int, int]]:
    """Bin ranges (padded by 2 bins, merged) holding the given ascending-distance ranks."""
    through = np.cumsum(hist)  # values in bins <= b
    windows = []
    for r in ranks:
        b = int(np.searchsorted(through, r, side="right"))  # first bin with through[b] > r
        windows.append((max(0, b - 2), min(HIST_BINS - 1, b + 2)))
    windows.sort()
    merged = [list(windows[0])]
    for lo, hi in windows[1:]:
        if lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _collect_windows(es: EmbeddingSet, windows) -> list[tuple[int, np.ndarray]]:
    """Per window: (negatives below it, its distances sorted ascending); one pass."""
    if not _use_kernels(es):
        return sharded.merge_windows(device_pairs.collect_windows(es, windows, HIST_BINS))
    lo = np.array([w[0] for w in windows], dtype=np.int64)
    hi = np.array([w[1] for w in windows], dtype=np.int64)
    below = np.zeros(len(windows), dtype=np.int64)
    parts: list[list[np.ndarray]] = [[np.zeros(0)] for _ in windows]  # a rank may own no block
    for i0, sims in upper_blocks(es):
        counts, values = _window_values_kernel(es, i0, sims, lo, hi)
        below += counts
        for w in range(len(windows)):
            parts[w].append(values[w])
    return sharded.merge_windows([(int(below[w]), np.sort(np.concatenate(parts[w]))) for w in range(len(windows))])


def _window_values_kernel(es, i0, sims, lo, hi):
    emb, codes = _kernel_args(es)
    s = sims.numpy()
    below = np.zeros((s.shape[0], lo.size), dtype=np.int64)
    inside = np.zeros_like(below)
    _kernels.window_block(s, emb, i0, codes, HIST_BINS, lo, hi, below, inside)
    flat = inside.T.reshape(-1)  # window-major
    starts = (np.cumsum(flat) - flat).reshape(lo.size, -1).T.copy()
    values = np.empty(int(flat.sum()), dtype=np.float64)
    _kernels.gather_window(s, emb, i0, codes, HIST_BINS, lo, hi, starts, values)
    bounds = np.concatenate([[0], np.cumsum(inside.sum(axis=0))])
    return below.sum(axis=0), [values[bounds[w] : bounds[w + 1]] for w in range(lo.size)]
