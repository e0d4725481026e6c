"""Streaming over all unordered pairs (a < b) of an ``EmbeddingSet``, block by block.

Nothing here ever holds the n x n similarity matrix: each block is ``rows x (n - i0)`` of the
upper triangle, sized to a memory budget, so 50,000 x 512 embeddings stay well under 4 GB.
The similarity matmul runs in torch (on the GPU when there is one); the per-pair counting runs
in fused numba kernels on the CPU (``_kernels``) and in torch tensor operations elsewhere.
Distances are float64 ``sqrt(2 - 2 s)`` of the float32 cosine similarity s, and the direct
``||a - b||`` for close pairs where that formula loses digits (METHOD.md, "Conventions").
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from tcm_core.metrics import _kernels
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
    for i0 in range(0, n, rows):
        yield i0, es.embeddings[i0 : i0 + rows] @ es.embeddings[i0:].T


USE_KERNELS = True  # tests switch this off to check the torch path against the kernels


def _use_kernels(es: EmbeddingSet) -> bool:
    return USE_KERNELS and es.embeddings.device.type == "cpu"


def _codes_np(es: EmbeddingSet) -> np.ndarray:
    return es.codes.cpu().numpy()


def _upper_mask(sims: torch.Tensor) -> torch.Tensor:
    r = sims.shape[0]
    valid = torch.ones_like(sims, dtype=torch.bool)
    valid[:, :r] = torch.ones(r, r, dtype=torch.bool, device=sims.device).triu(1)
    return valid


def _similarity_tolerance(es: EmbeddingSet) -> float:
    """Bound on the float32 rounding error of a cosine similarity in dimension d."""
    return max(1e-6, es.dim * 6e-8)


def _refine(es: EmbeddingSet, i0: int, d: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Replace ``d`` where ``mask`` by the exact float64 ``||a - b||``."""
    rows, cols = mask.nonzero(as_tuple=True)
    if rows.numel():
        e = torch.from_numpy(es.exact).to(d.device)
        d[rows, cols] = (e[i0 + rows] - e[i0 + cols]).norm(dim=1)
    return d


def _torch_distances(es: EmbeddingSet, i0: int, sims: torch.Tensor) -> torch.Tensor:
    """float64 distances of a block; close pairs refined as in ``_kernels.pair_distance``."""
    d = (2.0 - 2.0 * sims.double()).clamp_(min=0.0).sqrt_()
    return _refine(es, i0, d, sims >= _kernels.REFINE_SIMILARITY)


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
    counts = _counts_kernel(es, t, tol) if _use_kernels(es) else _counts_torch(es, t, tol)  # (C, 2, k+1)
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


def _counts_torch(es: EmbeddingSet, t: np.ndarray, tol: float) -> np.ndarray:
    k, c = t.size, len(es.classes)
    edges = torch.tensor(t, dtype=torch.float64, device=es.embeddings.device)
    stride, dump = k + 1, 2 * c * (k + 1)
    hist = torch.zeros(dump + 1, dtype=torch.int64, device=es.embeddings.device)
    for i0, sims in upper_blocks(es):
        r = sims.shape[0]
        valid = _upper_mask(sims)
        d = _torch_distances(es, i0, sims)
        first = torch.bucketize(d, edges)  # first threshold with d <= t
        if tol > 0:
            gap = torch.minimum((edges[first.clamp(max=k - 1)] - d).abs(), (d - edges[(first - 1).clamp(min=0)]).abs())
            first = torch.bucketize(_refine(es, i0, d, gap <= tol / d.clamp(min=1e-3)), edges)
        rc, cc = es.codes[i0 : i0 + r, None], es.codes[None, i0:]
        neg = rc != cc
        row_key = ((rc * 2 + neg) * stride + first).masked_fill_(~valid, dump)
        col_key = ((cc * 2 + 1) * stride + first).masked_fill_(~(valid & neg), dump)
        hist += torch.bincount(row_key.view(-1), minlength=dump + 1)
        hist += torch.bincount(col_key.view(-1), minlength=dump + 1)
    return hist[:-1].view(c, 2, stride).cpu().numpy()


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
        return out.sum(axis=0)
    hist = torch.zeros(HIST_BINS + 1, dtype=torch.int64, device=es.embeddings.device)
    for i0, sims in upper_blocks(es):
        b = _torch_bins(es, i0, sims).masked_fill_(~_torch_negatives(es, i0, sims), HIST_BINS)
        hist += torch.bincount(b.view(-1), minlength=HIST_BINS + 1)
    return hist[:HIST_BINS].cpu().numpy()


def _torch_bins(es: EmbeddingSet, i0: int, sims: torch.Tensor) -> torch.Tensor:
    """Same binning as ``_kernels.distance_bin``."""
    d = _torch_distances(es, i0, sims)
    return (d * (HIST_BINS / 2.0)).long().clamp_(max=HIST_BINS - 1)


def _torch_negatives(es: EmbeddingSet, i0: int, sims: torch.Tensor) -> torch.Tensor:
    r = sims.shape[0]
    return _upper_mask(sims) & (es.codes[i0 : i0 + r, None] != es.codes[None, i0:])


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
    lo = np.array([w[0] for w in windows], dtype=np.int64)
    hi = np.array([w[1] for w in windows], dtype=np.int64)
    below = np.zeros(len(windows), dtype=np.int64)
    parts: list[list[np.ndarray]] = [[] for _ in windows]
    for i0, sims in upper_blocks(es):
        if _use_kernels(es):
            counts, values = _window_values_kernel(es, i0, sims, lo, hi)
            below += counts
        else:
            d = _torch_distances(es, i0, sims)
            b = _torch_bins(es, i0, sims).masked_fill_(~_torch_negatives(es, i0, sims), HIST_BINS)
            values = []
            for w in range(len(windows)):
                below[w] += int((b < lo[w]).sum())
                inside = (b >= lo[w]) & (b <= hi[w])
                values.append(_refine(es, i0, d.clone(), inside)[inside].cpu().numpy())
        for w in range(len(windows)):
            parts[w].append(values[w])
    return [(int(below[w]), np.sort(np.concatenate(parts[w]))) for w in range(len(windows))]


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
