"""TCM margins from targets: which m- and m+ (METHOD.md, "TCM") make TCM act on a chosen share
of the baseline's pairs.

TCM's negative term penalizes negative pairs with cosine similarity ``s >= m-``, its positive
term positive pairs with ``s <= m+``. For a target false-accept share ``far`` of negatives and a
false-reject share ``frr`` of positives, the suggestion is ``m- = quantile(s_neg, 1 - far)`` and
``m+ = quantile(s_pos, frr)`` (``numpy.quantile``, linear interpolation) of the baseline's
pair similarities ``s = 1 - d^2 / 2``, with the shares of pairs those margins penalize.

``suggest_margins`` is exact from embeddings (negatives streamed with ``thresholds``' exact
order statistics, never listed; positives listed class by class).
``suggest_margins_from_histograms`` answers from the ``SimilarityHistograms`` the margins page
already holds, exact up to linear interpolation inside one bin, like ``penalized_shares``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from tcm_core.checks import check_number
from tcm_core.metrics import pairs
from tcm_core.metrics.inputs import EmbeddingSet, embedding_set
from tcm_core.metrics.thresholds import negative_distance_ranks, positive_distances

if TYPE_CHECKING:  # similarities imports the losses (and pytorch-metric-learning): not at start-up
    from tcm_core.metrics.similarities import SimilarityHistograms

DEFAULT_FAR = 1e-3  # the example: penalize the 0.1% most similar negatives
DEFAULT_FRR = 0.05  # and the 5% least similar positives


@dataclass(frozen=True)
class MarginSuggestion:
    """m- (``margin_neg``) and m+ (``margin_pos``) for the targets ``far`` and ``frr``, and the
    shares of the baseline's pairs they penalize: ``share_neg`` of negatives with s >= m-,
    ``share_pos`` of positives with s <= m+ (ties make them a little above the targets)."""

    far: float
    frr: float
    margin_neg: float
    margin_pos: float
    share_neg: float
    share_pos: float
    negative_pairs: int
    positive_pairs: int
    method: str

    @property
    def train_options(self) -> str:
        """The ``train`` flags that use these margins."""
        return f"--margin-pos {self.margin_pos:.6f} --margin-neg {self.margin_neg:.6f}"

    @property
    def note(self) -> str | None:
        if self.margin_pos < self.margin_neg:
            return ("m+ < m-: the baseline's least similar positives are less similar than its most "
                    "similar negatives; TCM will push both sides hard")
        return None

    def to_dict(self) -> dict:
        return {**asdict(self), "train_options": self.train_options, "note": self.note}


def suggest_margins(embeddings, labels, *, far: float = DEFAULT_FAR, frr: float = DEFAULT_FRR,
                    normalize: bool = True, device=None) -> MarginSuggestion:
    """Exact margins for the targets from a baseline's ``embeddings (n, d)`` and ``labels (n,)``."""
    far, frr = _check_targets(far, frr)
    return suggest_margins_from_set(embedding_set(embeddings, labels, normalize=normalize, device=device),
                                    far=far, frr=frr)


def suggest_margins_from_set(es: EmbeddingSet, *, far: float = DEFAULT_FAR,
                             frr: float = DEFAULT_FRR) -> MarginSuggestion:
    far, frr = _check_targets(far, frr)
    m_neg, share_neg, n_neg = _negative_margin(es, far)
    s_pos = 1.0 - positive_distances(es) ** 2 / 2.0
    m_pos = float(np.quantile(s_pos, frr))
    share_pos = float(np.count_nonzero(s_pos <= m_pos) / s_pos.size)
    return MarginSuggestion(far, frr, m_neg, m_pos, share_neg, share_pos, n_neg, int(s_pos.size), "exact")


def _negative_margin(es: EmbeddingSet, far: float) -> tuple[float, float, int]:
    """(quantile(s_neg, 1 - far), share of negatives with s >= it, M). Ascending similarity rank
    r is ascending distance rank M - 1 - r (s = 1 - d^2/2 falls as d grows)."""
    m = pairs.negative_pair_count(es.class_sizes)
    pos = (1.0 - far) * (m - 1)
    lo = math.floor(pos)
    hi, g = min(lo + 1, m - 1), pos - lo
    d, at_or_below = negative_distance_ranks(es, [m - 1 - lo, m - 1 - hi])
    s_lo, s_hi = 1.0 - d**2 / 2.0
    margin = float(s_lo + g * (s_hi - s_lo))
    # pairs with s >= margin: at or above similarity rank lo when the margin is s_lo, else hi
    penalized = at_or_below[0] if margin <= s_lo else at_or_below[1]
    return margin, float(penalized / m), m


def suggest_margins_from_histograms(h: SimilarityHistograms, *, far: float = DEFAULT_FAR,
                                    frr: float = DEFAULT_FRR) -> MarginSuggestion:
    """The same from pair-similarity histograms (``similarities.pair_similarities``): the inverse
    of ``penalized_shares``, exact up to interpolation inside one bin."""
    from tcm_core.metrics.similarities import penalized_shares

    far, frr = _check_targets(far, frr)
    m_neg = _histogram_quantile(h.edges, h.neg_count, 1.0 - far)
    m_pos = _histogram_quantile(h.edges, h.pos_count, frr)
    share_pos, share_neg = penalized_shares(h, m_pos, m_neg)
    width = float(h.edges[1] - h.edges[0])
    return MarginSuggestion(far, frr, m_neg, m_pos, share_neg, share_pos, h.negative_pairs,
                            h.positive_pairs, f"histogram (bins {width:g} wide in similarity)")


def _histogram_quantile(edges: np.ndarray, counts: np.ndarray, q: float) -> float:
    """Where the piecewise-linear cumulative count reaches ``q`` of the total."""
    cum = np.concatenate([[0.0], np.cumsum(counts)])
    target = q * cum[-1]
    if target <= 0:  # the lower edge of the first occupied bin
        return float(edges[int(np.flatnonzero(counts)[0])])
    j = int(np.searchsorted(cum, target, side="left")) - 1  # cum[j] < target <= cum[j + 1]
    f = (target - cum[j]) / counts[j]
    return float(np.clip(edges[j] + f * (edges[j + 1] - edges[j]), -1.0, 1.0))


def _check_targets(far, frr) -> tuple[float, float]:
    return (check_number(far, "far", low=0.0, high=1.0, what="a rate"),
            check_number(frr, "frr", low=0.0, high=1.0, what="a rate"))
