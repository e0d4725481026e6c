"""Utility-curve counts over a FAR band in two passes over the pairs instead of three (the CPU
kernels' path of ``utility.utility_curves``; METHOD.md, "Calibration range and the threshold
grid").

The band's ends are exact quantiles of the negative-pair distances, so the K thresholds are
known only after the pairs have been ranked; counting at them would take a third pass. Here the
first pass (a fine histogram of positive and negative pairs over s) locates each end within a
few bins, which puts every threshold t_k = t_min + k (t_max - t_min) / (K - 1) inside a known
narrow interval. The second pass collects the ends' exact values and counts every pair outside
those intervals at once (its threshold index does not depend on where inside its interval a
threshold falls); the few pairs inside an interval are kept and decided once the thresholds are
exact, with the same exact rule as ``pairs.accepted_counts``. The counts are therefore the same
as the three-pass path's (tested). Under ``torchrun`` each rank streams its own blocks
(``pairs._blocks``) in both passes and keeps its own deferred pairs; histograms and counts are
summed over the ranks (``sharded.sum_over_ranks``) and the ends' values gathered
(``sharded.merge_windows``) before they are used, and a short buffer on any rank sends all
ranks to the third pass together, so every rank ends with the single-process counts. Where
an assumption fails (a buffer was short, a threshold left its interval: embeddings that are not
unit vectors), a third pass counts as before.
"""

from __future__ import annotations

import numpy as np

from tcm_core.metrics import _kernels, pairs, sharded
from tcm_core.metrics.inputs import EmbeddingSet

SLACK = 1e-12  # distance units: float64 rounding of numpy.linspace
ZONE_CELLS = 1 << 18  # cells of the second pass's lookup table: fine, so that few pairs wait


def band_counts(es: EmbeddingSet, far_range, num_thresholds: int):
    """``(thresholds (k,), pos (classes, k), neg (classes, k))``: ``linspace`` between the exact
    ``far_range`` quantiles of the negative-pair distances and ``accepted_counts`` there."""
    if not pairs._use_kernels(es):
        return _three_passes(es, far_range, num_thresholds)
    pos, lo, hi, ranks = pairs._quantile_ranks(es, far_range)
    pos_hist, neg_hist = _pair_histograms(es)
    tol = pairs._similarity_tolerance(es)
    windows = pairs._rank_windows(neg_hist, ranks, pairs._window_pad(es, least=0))
    zone_d = _threshold_intervals(neg_hist, windows, lo, hi, tol, num_thresholds)
    zone_s = pairs.distance_to_similarity(zone_d)  # the intervals in s: the far ends are the lower bounds
    zones = pairs.zone_table(zone_s[1], zone_s[0], tol, ZONE_CELLS)
    found = _band_pass(es, windows, neg_hist, pos_hist + neg_hist, zones, num_thresholds)
    if found is None:  # a buffer was short
        return _three_passes(es, far_range, num_thresholds)
    collected, out, deferred = found
    t = np.linspace(*pairs._quantiles(collected, pos, lo, hi), num_thresholds)
    if not ((zone_d[0] <= t) & (t <= zone_d[1])).all():
        return (t, *pairs.accepted_counts(es, t))
    srt = pairs.sorted_set(es)
    _kernels.count_deferred(*deferred, srt.exact, srt.codes, pairs.lookup_table(t, tol), t, pairs._inv_step(t),
                            tol, out)  # this rank's pairs
    counts = sharded.sum_over_ranks(out.sum(axis=0)).reshape(len(es.classes), 2, t.size + 1)
    cum = counts.cumsum(axis=-1)[..., : t.size]
    return t, cum[:, 0], cum[:, 1]


def _three_passes(es: EmbeddingSet, far_range, num_thresholds: int):
    """The three-pass path: the band's exact ends (``negative_distance_quantiles``), then the
    counts at its thresholds."""
    t = np.linspace(*pairs.negative_distance_quantiles(es, far_range), num_thresholds)
    return (t, *pairs.accepted_counts(es, t))


def _pair_histograms(es: EmbeddingSet) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative pairs per ``pairs.HIST_BINS`` bin of ``1 - s``, over all ranks."""
    srt = pairs.sorted_set(es)
    shape = (_kernels.nb.get_num_threads(), pairs.HIST_BINS)
    pos, neg = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    for i0, sims in pairs._blocks(srt.embeddings):
        _kernels.pair_histogram_block(sims.numpy(), i0, srt.class_end, pos, neg)
    both = sharded.sum_over_ranks(np.stack([pos.sum(axis=0), neg.sum(axis=0)]))
    return both[0], both[1]


def _bin_similarities(bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) s of histogram bins ``bins`` of ``1 - s``."""
    width = 2.0 / pairs.HIST_BINS
    return 1.0 - (bins + 1) * width, 1.0 - bins * width


def _threshold_intervals(neg_hist, windows, lo, hi, tol, k) -> np.ndarray:
    """``(2, k)`` distance intervals that hold the thresholds: each end's quantile lies in the
    windows holding its two ranks (padded by the float32 error ``tol`` of s), and t_k grows with
    both ends."""
    through = np.cumsum(neg_hist)
    ends = []
    for a, b in zip(lo, hi):
        bins = np.searchsorted(through, [a, b], side="right")
        held = [w for w in windows if any(w[0] <= q <= w[1] for q in bins)]
        s_low = _bin_similarities(np.array([w[1] for w in held]))[0].min() - tol
        s_high = _bin_similarities(np.array([w[0] for w in held]))[1].max() + tol
        ends.append((_distance(s_high), _distance(s_low)))
    (a0, a1), (b0, b1) = ends
    f = np.arange(k) / (k - 1)
    return np.stack([a0 + f * (b0 - a0) - SLACK, a1 + f * (b1 - a1) + SLACK])


def _distance(s: float) -> float:
    return float(np.sqrt(np.clip(2.0 - 2.0 * np.clip(s, -1.0, 1.0), 0.0, 4.0)))


def _deferred_capacity(all_hist: np.ndarray, zones: np.ndarray) -> int:
    """Pairs in histogram bins that touch a deferred cell of ``zones`` (+ slack)."""
    s_low, s_high = _bin_similarities(np.arange(pairs.HIST_BINS))
    cells = zones.size
    cell = lambda s: np.clip(((s + 1.0) * (cells / 2.0)).astype(np.int64), 0, cells - 1)  # noqa: E731
    touched = (zones[cell(s_low)] < 0) | (zones[cell(s_high)] < 0)
    return int(all_hist[touched].sum() * 1.05) + 4096


def _band_pass(es: EmbeddingSet, windows, neg_hist, all_hist, zones, k: int):
    """The second pass: ``(windows' values over all ranks, this rank's counts (threads, 2C, k+1),
    this rank's deferred pairs)``, or None on every rank when a buffer was short on any
    (matmuls that round differently between passes)."""
    srt = pairs.sorted_set(es)
    threads = _kernels.nb.get_num_threads()
    lo = np.array([w[0] for w in windows], dtype=np.int64)
    hi = np.array([w[1] for w in windows], dtype=np.int64)
    capacity = int(sum(neg_hist[a : b + 1].sum() for a, b in windows)) + 1024
    gaps, counts = np.zeros((threads, lo.size), dtype=np.int64), np.zeros(threads, dtype=np.int64)
    window, values = np.empty((threads, capacity), dtype=np.int32), np.empty((threads, capacity))
    room = _deferred_capacity(all_hist, zones)
    deferred, pairs_s = np.empty((threads, room, 2), dtype=np.int32), np.empty((threads, room), dtype=np.float32)
    found = np.zeros(threads, dtype=np.int64)
    out = np.zeros((threads, 2 * len(es.classes), k + 1), dtype=np.int64)
    for i0, sims in pairs._blocks(srt.embeddings):
        _kernels.band_block(sims.numpy(), srt.exact, i0, srt.codes, srt.class_end, pairs.HIST_BINS, lo, hi, gaps,
                            counts, window, values, zones, out, deferred, pairs_s, found)
    short = int(counts.max() > capacity or found.max() > room)
    if sharded.sum_over_ranks(np.array([short], dtype=np.int64))[0]:  # the same answer on every rank
        return None
    collected = sharded.merge_windows(pairs.split_windows(len(windows), gaps, counts, window, values))
    return collected, out, (deferred, pairs_s, found)
