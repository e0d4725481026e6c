"""The per-pair passes of ``pairs`` in torch tensor operations on the metric device (a GPU),
with the same results as the CPU kernels (``_kernels``) bit for bit.

Per block of the upper triangle, everything stays on the device: the float32 similarity
matmul (full float32: TF32 would break the rounding bound), the decisions, and the int64
accumulators, which come to the host once at the end of a pass. Per block the host only
learns the sizes of one or two compacted pair lists (``nonzero``); no block is copied.

Exactness: "d <= t" and the histogram bin of a float32 similarity are float32 comparisons
against cut points found once (``similarity_bounds``). The pairs the kernels decide on the
exact float64 ``||a - b||`` (similarity >= ``REFINE_SIMILARITY``, or within float32 rounding
of a threshold) get it here too, summed over the dimensions in the kernels' order so it is the
same float64 number; they are batched across blocks (``_Refiner``) so its d sequential steps
cost little. Blocks are sized from a memory budget: ``budget_bytes`` or the environment
variable ``TCM_MEMORY_BUDGET_BYTES`` (default: a quarter of the GPU's memory, 2 GiB on the
CPU) bounds the per-block temporaries; the float32 embeddings and a float64 copy (12 n d
bytes) stay on the device besides.
"""

from __future__ import annotations

import contextlib
import os
import weakref

import numpy as np
import torch

from tcm_core.errors import TCMError
from tcm_core.metrics import sharded, similarity_bounds
from tcm_core.metrics.inputs import EmbeddingSet

BUDGET_ENV = "TCM_MEMORY_BUDGET_BYTES"
CPU_BUDGET = 2 << 30
COUNT_BYTES_PER_PAIR = 80  # the counting pass, when every pair of a block is below t_max
SCAN_BYTES_PER_PAIR = 32  # the histogram and window passes
MAX_REFINE_CHUNK = 1 << 22  # exact distances computed together

_EXACT = weakref.WeakKeyDictionary()  # EmbeddingSet -> its float64 embeddings on the device


def memory_budget(budget_bytes: int | None = None, device: torch.device | None = None) -> int:
    """Bytes of per-block temporaries: the argument, else ``$TCM_MEMORY_BUDGET_BYTES``, else
    the device's default."""
    raw = budget_bytes if budget_bytes is not None else os.environ.get(BUDGET_ENV)
    if raw is None:
        return default_budget(device)
    try:
        budget = int(float(raw))
    except (TypeError, ValueError):
        raise TCMError(f"{BUDGET_ENV} must be a number of bytes, like 8e9; got {raw!r}") from None
    if budget < 1 << 20:
        raise TCMError(f"the memory budget must be at least 1 MiB (1048576 bytes); got {budget}")
    return budget


def default_budget(device: torch.device | None) -> int:
    if device is not None and device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory // 4
    return CPU_BUDGET


def block_rows(n: int, bytes_per_pair: int, budget: int) -> int:
    """Rows per block: within the budget, and at least ~8 blocks so that skipping the lower
    triangle saves about half the matmul."""
    return int(max(1, min(budget // (bytes_per_pair * n), max(64, -(-n // 8)))))


@contextlib.contextmanager
def _full_float32():
    """TF32/bf16 matmul would exceed the float32 rounding bound the decisions rely on."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


class DevicePairs:
    """One pass's view of an ``EmbeddingSet``: this rank's blocks and exact distances."""

    def __init__(self, es: EmbeddingSet, bytes_per_pair: int, budget_bytes: int | None = None):
        self.es, self.device = es, es.embeddings.device
        budget = memory_budget(budget_bytes, self.device)
        self.rows = block_rows(es.n, bytes_per_pair, budget)
        self.refine_chunk = int(min(MAX_REFINE_CHUNK, max(1024, budget // (24 * es.dim))))
        if es not in _EXACT:  # a frozen set's embeddings keep their device
            _EXACT[es] = torch.from_numpy(es.exact).to(self.device)
        self.exact = _EXACT[es]  # (n, d) float64

    def blocks(self):
        """Yield ``(i0, sims (r, n - i0))`` for this rank's blocks; pair (i0 + i, i0 + j) is in
        the upper triangle when j > i (``upper_``)."""
        emb = self.es.embeddings
        with _full_float32():
            for i0 in sharded.owned(range(0, self.es.n, self.rows)):
                yield i0, emb[i0 : i0 + self.rows] @ emb[i0:].T

    def negatives(self, i0: int, sims: torch.Tensor) -> torch.Tensor:
        """``(r, m)`` bool: unordered negative pairs of the block."""
        codes = self.es.codes
        return upper_(codes[i0 : i0 + sims.shape[0], None] != codes[None, i0:])

    def exact_distances(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """float64 ``||a - b||`` summed in ``_kernels.exact_distance``'s order (same bits)."""
        sq = self.exact[a] - self.exact[b]  # (p, d)
        sq.mul_(sq)
        acc = sq[:, 0].clone()
        for k in range(1, sq.shape[1]):
            acc.add_(sq[:, k])
        return sqrt_(acc)


def sqrt_(x: torch.Tensor) -> torch.Tensor:
    """Correctly rounded float64 square root, in place, as ``math.sqrt`` in the kernels. CUDA's
    is; torch's vectorized CPU one (SLEEF, 0.5001 ulp) is off by one ulp now and then, so on
    the CPU numpy's (the hardware instruction) does it."""
    if x.device.type == "cpu":
        np.sqrt(x.numpy(), out=x.numpy())
        return x
    return x.sqrt_()


def upper_(mask: torch.Tensor) -> torch.Tensor:
    """Keep only local column > local row in the block's leading square, in place."""
    r = mask.shape[0]
    mask[:, :r] &= torch.ones(r, r, dtype=torch.bool, device=mask.device).triu(1)
    return mask


class _Refiner:
    """Pairs waiting for their exact distance; ``finish(a, b, tag, d)`` gets them in chunks."""

    def __init__(self, dp: DevicePairs, finish):
        self.dp, self.finish, self.parts, self.size = dp, finish, [], 0

    def add(self, a: torch.Tensor, b: torch.Tensor, tag: torch.Tensor) -> None:
        if a.numel():
            self.parts.append((a, b, tag))
            self.size += a.numel()
            if self.size >= self.dp.refine_chunk:
                self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        a, b, tag = (torch.cat(p) for p in zip(*self.parts))
        self.parts, self.size = [], 0
        for c in range(0, a.numel(), self.dp.refine_chunk):
            part = slice(c, c + self.dp.refine_chunk)
            self.finish(a[part], b[part], tag[part], self.dp.exact_distances(a[part], b[part]))


def tally_(hist: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """``hist[key] += 1`` for every key, in place. Unlike ``torch.bincount`` it does not read
    the largest key back to the host (a sync per call on a GPU)."""
    keys = keys.reshape(-1).long()
    return hist.scatter_add_(0, keys, torch.ones(1, dtype=hist.dtype, device=hist.device).expand(keys.numel()))


REFINE_SIMILARITY32 = similarity_bounds.refine_similarity()


# ---------------------------------------------------------------- counts at thresholds

def counts(es: EmbeddingSet, thresholds: np.ndarray, sim_tol: float,
           budget_bytes: int | None = None) -> np.ndarray:
    """``(classes, 2, k + 1)`` int64 as ``pairs._counts_kernel``: pairs of class c first
    accepted at threshold b, [c, 0] positive, [c, 1] negative (for both of its classes).

    Only bucket k (above every threshold) is left incomplete: pairs surely there are skipped.
    """
    dp = DevicePairs(es, COUNT_BYTES_PER_PAIR, budget_bytes)
    k, c = thresholds.size, len(es.classes)
    stride, dump = k + 1, 2 * c * (k + 1)
    edges = torch.tensor(thresholds, dtype=torch.float64, device=dp.device)
    hist = torch.zeros(dump + 1, dtype=torch.int64, device=dp.device)

    def add(a, b, first, drop=None):
        ca, cb = es.codes[a], es.codes[b]
        neg = ca != cb
        row = ca.mul_(2).add_(neg).mul_(stride).add_(first)  # in place: ~60 bytes a kept pair
        col = cb.mul_(2).add_(1).mul_(stride).add_(first).masked_fill_(~neg, dump)
        if drop is not None:
            row.masked_fill_(drop, dump)
            col.masked_fill_(drop, dump)
        tally_(tally_(hist, row), col)

    refiner = _Refiner(dp, lambda a, b, _, d: add(a, b, torch.bucketize(d, edges)))
    keep_from = _count_cut(thresholds[-1], sim_tol)
    for i0, sims in dp.blocks():
        a, b = upper_(sims >= keep_from).nonzero(as_tuple=True)
        first, exact = _first_accepting(sims[a, b], edges, sim_tol)
        a, b = a.add_(i0), b.add_(i0)
        add(a, b, first, drop=exact)
        e = exact.nonzero().view(-1)
        refiner.add(a[e], b[e], e)
    refiner.flush()
    return hist[:-1].view(c, 2, stride).cpu().numpy()


def _count_cut(t_max: float, sim_tol: float) -> float:
    """Similarity below which a pair is surely above ``t_max`` and not near it (so neither
    counted nor refined), unless it is refined for being close (>= ``REFINE_SIMILARITY``)."""
    reach = t_max + (sim_tol / max(t_max, 1e-3) if sim_tol > 0 else 0.0)
    reach = reach * (1 + 1e-9) + 1e-12  # a superset is always safe
    cut = float(similarity_bounds.smallest_similarity_within(reach)[0]) if reach < 2.5 else -4.0
    return min(cut, REFINE_SIMILARITY32)


def _first_accepting(s: torch.Tensor, edges: torch.Tensor, sim_tol: float):
    """For float32 similarities ``s (p,)``: the first threshold with d <= t from the float32
    distance (``_kernels.count_block``), and which pairs the kernels decide on the exact one."""
    d = sqrt_(s.double().mul_(-2.0).add_(2.0).clamp_(min=0.0))  # 2 - 2 s, the same bits
    first = torch.bucketize(d, edges)
    exact = s >= REFINE_SIMILARITY32
    if sim_tol > 0:
        exact |= _near_threshold(d, first, edges, sim_tol)
    return first, exact


def _near_threshold(d, first, edges, sim_tol):
    """``_kernels.count_block``'s test: d within the similarity rounding of a threshold."""
    k = edges.numel()
    # a tensor numerator: ``float / tensor`` is reciprocal-then-multiply in torch (two roundings)
    tol = torch.tensor(sim_tol, dtype=d.dtype, device=d.device) / d.clamp(min=1e-3)
    above = (first < k) & (edges[first.clamp(max=k - 1)] - d <= tol)
    return above | ((first > 0) & (d - edges[(first - 1).clamp(min=0)] <= tol))


# ---------------------------------------------------------------- exact quantiles

def _distance_bins(d: torch.Tensor, nbins: int) -> torch.Tensor:
    """Bins of float64 distances: ``floor(d * nbins / 2)``, ``nbins`` equal bins over [0, 2]
    (d = 2 in the last), the bins whose float32 cut points ``similarity_bounds.bin_bounds``
    finds (the kernels bin ``1 - s`` instead: ``_kernels.similarity_bin``)."""
    return (d * (nbins / 2.0)).long().clamp_(max=nbins - 1)


class _Binner:
    """Histogram bins ``(r, m)`` int32 of a block's negative pairs, from the float32 cut
    points; ``nbins`` (past the last bin) where not a negative pair, or where the kernels take
    the exact distance: those go to ``refiner`` with tag -1."""

    def __init__(self, dp: DevicePairs, nbins: int):
        self.dp, self.nbins = dp, nbins
        self.bounds = torch.tensor(similarity_bounds.bin_bounds(nbins), device=dp.device)

    def block(self, i0, sims, refiner: _Refiner) -> torch.Tensor:
        neg = self.dp.negatives(i0, sims)
        bins = torch.bucketize(sims, self.bounds, out_int32=True).neg_().add_(self.nbins - 1)
        exact = neg & (sims >= REFINE_SIMILARITY32)
        bins.masked_fill_(~neg | exact, self.nbins)
        i, j = exact.nonzero(as_tuple=True)
        refiner.add(i + i0, j + i0, torch.full_like(i, -1))
        return bins


def negative_histogram(es: EmbeddingSet, nbins: int, budget_bytes: int | None = None) -> np.ndarray:
    """``(nbins,)`` int64: negative pairs per distance bin over [0, 2] (this rank's blocks)."""
    dp = DevicePairs(es, SCAN_BYTES_PER_PAIR, budget_bytes)
    binner = _Binner(dp, nbins)
    hist = torch.zeros(nbins + 1, dtype=torch.int64, device=dp.device)
    refiner = _Refiner(dp, lambda a, b, _, d: tally_(hist, _distance_bins(d, nbins)))
    for i0, sims in dp.blocks():
        tally_(hist, binner.block(i0, sims, refiner))
    refiner.flush()
    return hist[:nbins].cpu().numpy()


def collect_windows(es: EmbeddingSet, windows, nbins: int,
                    budget_bytes: int | None = None) -> list[tuple[int, np.ndarray]]:
    """As ``pairs._collect_windows`` (this rank's blocks): per window ``(lo_bin, hi_bin)``
    (sorted, disjoint), the negatives in lower bins and the exact distances inside it, sorted."""
    dp = DevicePairs(es, SCAN_BYTES_PER_PAIR, budget_bytes)
    binner = _Binner(dp, nbins)
    nw = len(windows)
    # slot of a bin: 2w + 1 inside window w, 2w below it and above window w - 1; the binner's
    # dump (bin nbins) lands in slot 2 nw, above every window
    edges = torch.tensor([e for lo, hi in windows for e in (lo, hi + 1)], dtype=torch.int32, device=dp.device)
    below = torch.zeros(nw, dtype=torch.int64, device=dp.device)
    found_w, found_d = [], []

    def count_below(slot):  # a sum per window: a histogram of ~2 nw slots would be all collisions
        for w in range(nw):
            below[w] += (slot <= 2 * w).sum()

    def finish(a, b, tag, d):  # tag: the pair's window, or -1 when its slot needs d
        slot = torch.bucketize(_distance_bins(d, nbins).int(), edges, right=True, out_int32=True)
        count_below(slot.masked_fill_(tag >= 0, 2 * nw))
        window = torch.where(tag >= 0, tag, torch.where(slot % 2 == 1, slot // 2, -1))
        found_w.append(window[window >= 0])
        found_d.append(d[window >= 0])

    refiner = _Refiner(dp, finish)
    for i0, sims in dp.blocks():
        slot = torch.bucketize(binner.block(i0, sims, refiner), edges, right=True, out_int32=True)
        count_below(slot)
        i, j = (slot % 2 == 1).nonzero(as_tuple=True)
        refiner.add(i + i0, j + i0, (slot[i, j] // 2).long())
    refiner.flush()
    return _sorted_windows(below.cpu().numpy(), found_w, found_d, nw)


def _sorted_windows(below: np.ndarray, found_w, found_d, nw: int) -> list[tuple[int, np.ndarray]]:
    window = torch.cat(found_w).cpu().numpy() if found_w else np.zeros(0, dtype=np.int64)
    d = torch.cat(found_d).cpu().numpy() if found_d else np.zeros(0)
    return [(int(below[w]), np.sort(d[window == w])) for w in range(nw)]
