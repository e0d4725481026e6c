"""The global distance threshold for a target false-accept (or false-reject) rate, and every
class's FAR and FRR there (METHOD.md: a pair is accepted when ``d <= t``; global ``FAR(t)`` =
share of all negative pairs accepted, global ``FRR(t)`` = share of all positive pairs rejected;
per class ``FAR_c = 1 - TNR_c``, ``FRR_c = 1 - TPR_c`` over its own pairs).

Exact, with no list of all pairs. With ``M`` negative pairs, ``FAR(t) <= a`` allows at most
``k = max{j : j / M <= a}`` accepted negatives, so the largest such threshold is the float just
below the ``(k+1)``-th smallest negative distance (``numpy.nextafter``): ties at that distance
are all rejected. That order statistic comes from the two streaming passes of ``pairs`` (a fine
histogram locates it, a window pass ranks it exactly). ``FRR(t) <= f`` is met from the smallest
positive distance that leaves at most ``max{j : j / P <= f}`` of the ``P`` positive pairs
rejected; positive pairs (within a class) are few, so their exact distances are listed class by
class. One more pass (``pairs.accepted_counts``) counts every class's pairs at the threshold.
Distances are the float64 ``||a - b||`` of the L2-normalized embeddings, as ``pairs`` decides
pairs close to a threshold, so a threshold found here splits its ties exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
import pandas as pd

from tcm_core.checks import check_number, check_threshold
from tcm_core.errors import TCMError
from tcm_core.io import atomic_write
from tcm_core.metrics import _kernels, pairs
from tcm_core.metrics.inputs import EmbeddingSet, embedding_set

FAR, FRR = "far", "frr"
MAX_DISTANCE = 2.0  # between unit vectors


@dataclass(frozen=True, eq=False)
class ThresholdReport:
    """Rates at one global threshold ``d <= threshold``.

    ``target`` ("far", "frr" or None for a given threshold) and ``target_rate`` say how the
    threshold was chosen; ``classes`` holds the usable classes (>= 2 samples), index ``class``,
    columns ``size``, ``far``, ``frr``, worst first (highest rate of the target's kind, then the
    other rate, then class order).
    """

    threshold: float
    target: str | None
    target_rate: float | None
    far: float
    frr: float
    negatives_accepted: int
    negative_pairs: int
    positives_rejected: int
    positive_pairs: int
    classes: pd.DataFrame
    skipped_classes: int

    @property
    def similarity(self) -> float:
        """The threshold as a cosine similarity, ``s = 1 - t^2 / 2`` (accept when ``s >= it``)."""
        return float(1.0 - self.threshold**2 / 2.0)

    def class_records(self) -> list[dict]:
        """``[{class, size, far, frr}]`` in the table's order, as plain Python values."""
        return [{"class": _plain(c), "size": int(row.size), "far": float(row.far), "frr": float(row.frr)}
                for c, row in zip(self.classes.index, self.classes.itertuples())]

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "similarity": self.similarity, "far": self.far,
                "frr": self.frr, "target_far": self.target_rate if self.target == FAR else None,
                "target_frr": self.target_rate if self.target == FRR else None,
                "negatives_accepted": self.negatives_accepted, "negative_pairs": self.negative_pairs,
                "positives_rejected": self.positives_rejected, "positive_pairs": self.positive_pairs,
                "n_classes": len(self.classes), "skipped_classes": self.skipped_classes,
                "classes": self.class_records()}

    def write_csv(self, path) -> None:
        """The per-class table (``class,size,far,frr``, worst first), written atomically."""
        table = pd.DataFrame(self.class_records(), columns=["class", "size", "far", "frr"])
        atomic_write(path, lambda f: f.write(table.to_csv(index=False, float_format="%.10g").encode()))


def find_threshold(embeddings, labels, *, far: float | None = None, frr: float | None = None,
                   normalize: bool = True, device=None) -> ThresholdReport:
    """The threshold for a target rate, with the global and per-class FAR and FRR there.

    ``far=a``: the largest threshold with global FAR <= a. ``frr=f``: the smallest threshold
    with global FRR <= f (the one with the fewest false accepts). Give exactly one.
    ``embeddings (n, d)``, ``labels (n,)`` as everywhere in ``metrics``.
    """
    _check_target(far, frr)
    return find_threshold_from_set(embedding_set(embeddings, labels, normalize=normalize, device=device),
                                   far=far, frr=frr)


def find_threshold_from_set(es: EmbeddingSet, *, far: float | None = None,
                            frr: float | None = None) -> ThresholdReport:
    target, rate = _check_target(far, frr)
    t = far_threshold(es, rate) if target == FAR else frr_threshold(es, rate)
    return _report(es, t, target, rate)


def rates_at_threshold(embeddings, labels, threshold: float, *, normalize: bool = True,
                       device=None) -> ThresholdReport:
    """Exact global and per-class FAR / FRR at a given threshold (a distance in [0, 2]); the
    exact counterpart of ``rates.class_rates``, which interpolates histograms."""
    t = check_threshold(threshold)
    return _report(embedding_set(embeddings, labels, normalize=normalize, device=device), t, None, None)


def far_threshold(es: EmbeddingSet, far: float) -> float:
    """Largest ``t`` with (negatives with ``d <= t``) / M <= ``far``; TCMError if even t = 0 fails."""
    m = pairs.negative_pair_count(es.class_sizes)
    k = max_count(far, m)
    if k >= m:
        return MAX_DISTANCE
    (d,), (at_or_below,) = negative_distance_ranks(es, [k])
    if d <= 0.0:
        raise TCMError(f"no threshold keeps the global FAR <= {far:g}: {at_or_below} negative pair(s) "
                       f"are at distance 0 (identical embeddings with different labels; at most {k} allowed)")
    return float(np.nextafter(d, -np.inf))


def frr_threshold(es: EmbeddingSet, frr: float) -> float:
    """Smallest ``t`` with (positives with ``d > t``) / P <= ``frr``."""
    d = positive_distances(es)
    need = d.size - max_count(frr, d.size)  # positives that must be accepted
    if need <= 0:
        return 0.0
    return float(np.partition(d, need - 1)[need - 1])


def max_count(rate: float, total: int) -> int:
    """Largest integer j in [0, total] with ``j / total <= rate`` (as floats compare)."""
    j = min(total, math.floor(rate * total))
    while j < total and (j + 1) / total <= rate:
        j += 1
    while j > 0 and j / total > rate:
        j -= 1
    return j


def negative_distance_ranks(es: EmbeddingSet, ranks) -> tuple[np.ndarray, np.ndarray]:
    """For 0-based ascending ranks of the negative-pair distances: ``(values, at_or_below)``,
    the exact distance at each rank and how many negative pairs lie at or below it (ties
    included). Streams the pairs twice (``pairs``' locating histogram, then its window pass)."""
    ranks = np.asarray(ranks, dtype=np.int64).reshape(-1)
    m = pairs.negative_pair_count(es.class_sizes)
    if ranks.size == 0 or ranks.min() < 0 or ranks.max() >= m:
        raise TCMError(f"ranks must lie in [0, {m - 1}] (there are {m} negative pairs); got {ranks.tolist()}")
    hist = pairs._negative_histogram(es)
    windows = pairs._rank_windows(hist, np.unique(ranks), pairs._window_pad(es))
    collected = pairs._collect_windows(es, windows, hist)
    values, counts = np.empty(ranks.size), np.empty(ranks.size, dtype=np.int64)
    for i, r in enumerate(ranks):
        below, sorted_d = next((b, v) for b, v in collected if b <= r < b + v.size)
        values[i] = sorted_d[r - below]
        counts[i] = below + np.searchsorted(sorted_d, values[i], side="right")
    return values, counts


def positive_distances(es: EmbeddingSet) -> np.ndarray:
    """Exact distances of all positive pairs (both items in one class), class by class:
    ``(P,)`` float64 in no particular order, 8 bytes per positive pair."""
    codes = es.codes.cpu().numpy()
    order = np.argsort(codes, kind="stable")
    sizes = np.asarray(es.class_sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    offsets = np.concatenate([[0], np.cumsum(sizes * (sizes - 1) // 2)])
    out = np.empty(int(offsets[-1]), dtype=np.float64)
    _positive_distances(es.exact, order, starts, offsets, out)
    return out


@nb.njit(parallel=True, cache=True, nogil=True)
def _positive_distances(emb, order, starts, offsets, out):
    for c in nb.prange(starts.size - 1):
        p = offsets[c]
        for i in range(starts[c], starts[c + 1]):
            for j in range(i + 1, starts[c + 1]):
                out[p] = _kernels.exact_distance(emb, order[i], order[j])
                p += 1


def _report(es: EmbeddingSet, t: float, target: str | None, rate: float | None) -> ThresholdReport:
    pos, neg = (a[:, 0] for a in pairs.accepted_counts(es, np.array([t])))  # (classes,) each
    sizes = np.asarray(es.class_sizes, dtype=np.int64)
    n, usable = int(sizes.sum()), sizes >= 2
    pos_total, neg_total = sizes * (sizes - 1) // 2, sizes * (n - sizes)
    m, p = pairs.negative_pair_count(sizes), int(pos_total.sum())
    accepted, rejected = int(neg.sum()) // 2, p - int(pos.sum())
    table = pd.DataFrame({"size": sizes[usable],
                          "far": neg[usable] / neg_total[usable],
                          "frr": (pos_total[usable] - pos[usable]) / pos_total[usable]},
                         index=pd.Index(np.asarray(es.classes)[usable], name="class"))
    first, second = ("frr", "far") if target == FRR else ("far", "frr")
    table = table.iloc[np.lexsort((-table[second].to_numpy(), -table[first].to_numpy()))]
    return ThresholdReport(float(t), target, rate, accepted / m, rejected / p, accepted, m, rejected, p,
                           table, int((~usable).sum()))


def _check_target(far, frr) -> tuple[str, float]:
    if (far is None) == (frr is None):
        raise TCMError("give exactly one target: far (largest threshold with global FAR <= far) "
                       "or frr (smallest threshold with global FRR <= frr)")
    name, value = (FAR, far) if far is not None else (FRR, frr)
    return name, check_number(value, name, low=0.0, high=1.0, what="a rate")


def _plain(value):
    """A class name as the Python value JSON writes (numpy scalars unwrapped, bytes decoded)."""
    value = value.item() if hasattr(value, "item") else value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
