"""Per-class utility curves U_c(t) over a calibration range (METHOD.md, "Per-class utility
curve" and "Calibration range and the threshold grid").

``utility_curves`` is exact at every grid threshold: pair counts come from a streaming pass
over all unordered pairs (``pairs.accepted_counts``), never from an n x n matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcm_core.checks import check_beta, check_distance_range, check_far_range, check_num_thresholds
from tcm_core.metrics import pairs
from tcm_core.metrics.band import band_counts
from tcm_core.metrics.inputs import EmbeddingSet, embedding_set

DEFAULT_FAR_RANGE = (1e-3, 1e-1)  # (our choice), METHOD.md: the one place this band is written
DEFAULT_NUM_THRESHOLDS = 201  # (our choice), METHOD.md
DEFAULT_BETA = 1.0  # METHOD.md: TPR and TNR weigh the same
DEFAULT_EPS = 0.1  # METHOD.md: the worst 10% of classes for eps-OPIS


@dataclass(frozen=True, eq=False)
class UtilityCurves:
    """Utility of each usable class at each threshold of the grid.

    ``thresholds (k,)``, ``classes (T,)``, ``class_sizes (T,)``, ``utility/tpr/tnr (T, k)``,
    ``far (k,)`` the global false-accept rate, ``skipped_classes`` those with < 2 samples.
    """

    thresholds: np.ndarray
    classes: np.ndarray
    class_sizes: np.ndarray
    utility: np.ndarray
    tpr: np.ndarray
    tnr: np.ndarray
    far: np.ndarray
    skipped_classes: np.ndarray
    beta: float
    far_range: tuple[float, float] | None
    distance_range: tuple[float, float] | None

    @property
    def t_min(self) -> float:
        return float(self.thresholds[0])

    @property
    def t_max(self) -> float:
        return float(self.thresholds[-1])

    @property
    def num_thresholds(self) -> int:
        return int(self.thresholds.size)


def utility_from_rates(tpr: np.ndarray, tnr: np.ndarray, beta: float = DEFAULT_BETA) -> np.ndarray:
    """F-beta style utility ``(1+b^2) TPR TNR / (b^2 TNR + TPR)``, 0 where both rates are 0."""
    b2 = beta * beta
    num = np.multiply(tpr, tnr, dtype=np.float64)
    num *= 1.0 + b2
    den = np.multiply(tnr, b2, dtype=np.float64)
    den += tpr
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def calibration_range_from_set(es: EmbeddingSet, far_range=DEFAULT_FAR_RANGE, distance_range=None):
    """``(t_min, t_max)``: the given distance range, else quantiles of negative-pair distances."""
    if distance_range is not None:
        return check_distance_range(distance_range)
    lo, hi = pairs.negative_distance_quantiles(es, check_far_range(far_range))
    return float(lo), float(hi)


def calibration_range(embeddings, labels, *, far_range=DEFAULT_FAR_RANGE, distance_range=None,
                      normalize: bool = True) -> tuple[float, float]:
    """``(t_min, t_max)`` in distance units; see METHOD.md for the FAR-band definition."""
    es = embedding_set(embeddings, labels, normalize=normalize)
    return calibration_range_from_set(es, far_range, distance_range)


def curves_from_counts(classes, class_sizes, thresholds, pos_acc, neg_acc, *, beta, far_range,
                       distance_range) -> UtilityCurves:
    """Turn per-class accepted-pair counts ``(classes, k)`` (all classes, singletons included)
    into ``UtilityCurves`` over the usable classes."""
    sizes = np.asarray(class_sizes, dtype=np.float64)
    n = sizes.sum()
    usable = sizes >= 2
    pos_total = sizes * (sizes - 1) / 2
    neg_total = sizes * (n - sizes)
    far = neg_acc.sum(axis=0) / 2.0 / pairs.negative_pair_count(class_sizes)
    if not usable.all():  # (a copy only when there are singletons to leave out)
        pos_acc, neg_acc, pos_total, neg_total = pos_acc[usable], neg_acc[usable], pos_total[usable], neg_total[usable]
    tpr = pos_acc / pos_total[:, None]
    tnr = neg_acc / neg_total[:, None]
    np.subtract(1.0, tnr, out=tnr)
    return UtilityCurves(
        thresholds=np.asarray(thresholds, dtype=np.float64),
        classes=np.asarray(classes)[usable],
        class_sizes=np.asarray(class_sizes)[usable],
        utility=utility_from_rates(tpr, tnr, beta),
        tpr=tpr,
        tnr=tnr,
        far=far,
        skipped_classes=np.asarray(classes)[~usable],
        beta=beta,
        far_range=None if distance_range is not None else tuple(far_range),
        distance_range=None if distance_range is None else tuple(distance_range),
    )


def utility_curves_from_set(es: EmbeddingSet, *, far_range=DEFAULT_FAR_RANGE, distance_range=None,
                       num_thresholds=DEFAULT_NUM_THRESHOLDS, beta=DEFAULT_BETA) -> UtilityCurves:
    """``utility_curves`` on an already validated ``EmbeddingSet``."""
    k, beta = check_num_thresholds(num_thresholds), check_beta(beta)
    if distance_range is None:  # the band's ends and the counts in two passes over the pairs
        thresholds, pos_acc, neg_acc = band_counts(es, check_far_range(far_range), k)
    else:
        thresholds = np.linspace(*check_distance_range(distance_range), k)
        pos_acc, neg_acc = pairs.accepted_counts(es, thresholds)
    return curves_from_counts(es.classes, es.class_sizes, thresholds, pos_acc, neg_acc, beta=beta,
                              far_range=far_range, distance_range=distance_range)


def utility_curves(embeddings, labels, *, far_range=DEFAULT_FAR_RANGE, distance_range=None,
                   num_thresholds=DEFAULT_NUM_THRESHOLDS, beta=DEFAULT_BETA, normalize=True) -> UtilityCurves:
    """Per-class utility curves, exact at each of ``num_thresholds`` grid thresholds.

    embeddings (n, d) numpy array or torch tensor; labels (n,) ints or strings. The calibration
    range is ``distance_range`` when given, else the ``far_range`` band of negative-pair FAR.
    """
    k, beta = check_num_thresholds(num_thresholds), check_beta(beta)
    if distance_range is not None:
        check_distance_range(distance_range)
    else:
        check_far_range(far_range)
    es = embedding_set(embeddings, labels, normalize=normalize)
    return utility_curves_from_set(es, far_range=far_range, distance_range=distance_range,
                              num_thresholds=k, beta=beta)
