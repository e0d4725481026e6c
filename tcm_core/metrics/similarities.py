"""What TCM's margins would act on: the pair cosine similarities of a run's test embeddings,
the share of pairs m+ and m- penalize, and the TCM loss they give (METHOD.md, "TCM").

``pair_similarities`` streams the cosine similarities of all unordered test pairs ``a < b``
into fine histograms (positives and negatives apart) with per-bin sums of ``s``, in row blocks
(never the full ``n x n``), samples sorted by class and binned in a numba kernel
(``_kernels``). Every slider move is then answered from the histograms alone:
``penalized_shares`` (share of hard positives ``s <= m+`` and hard negatives ``s >= m-``) and
``tcm_value`` (the TCM loss over all those pairs), exact up to linear interpolation inside one bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcm_core.checks import check_embeddings, check_labels, check_lambda, check_margin, unit_rows
from tcm_core.errors import TCMError
from tcm_core.losses.tcm import LAMBDA_NEG, LAMBDA_POS, MARGIN_NEG, MARGIN_POS
from tcm_core.metrics import _kernels

DEFAULT_BINS = 2000  # bin width 0.001 in cosine similarity
BLOCK_ROWS = 512


@dataclass(frozen=True, eq=False)
class SimilarityHistograms:
    """Pair cosine similarities on ``edges (bins + 1,)`` over [-1, 1]: ``pos_count/neg_count
    (bins,)`` pair counts and ``pos_sum/neg_sum (bins,)`` sums of ``s`` per bin."""

    edges: np.ndarray
    pos_count: np.ndarray
    neg_count: np.ndarray
    pos_sum: np.ndarray
    neg_sum: np.ndarray

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def positive_pairs(self) -> int:
        return int(self.pos_count.sum())

    @property
    def negative_pairs(self) -> int:
        return int(self.neg_count.sum())


def pair_similarities(embeddings, labels, *, normalize: bool = True, num_bins: int = DEFAULT_BINS,
                      block_rows: int = BLOCK_ROWS) -> SimilarityHistograms:
    """Histograms of ``s = cos(x_a, x_b)`` of all pairs ``a < b`` of ``embeddings (n, d)``."""
    x = (unit_rows if normalize else check_embeddings)(embeddings, normalize=normalize, min_rows=2)
    y, _ = check_labels(labels, len(x))  # integer codes: same code, same class
    if not isinstance(num_bins, (int, np.integer)) or num_bins < 2:
        raise TCMError(f"num_bins must be an integer >= 2; got {num_bins!r}")
    order = np.argsort(y, kind="stable")  # by class: a row's positives end where its class does
    x, y = np.ascontiguousarray(x[order], dtype=np.float32), y[order]
    class_end = np.searchsorted(y, y, side="right").astype(np.int64)
    threads = _kernels.nb.get_num_threads()
    counts, sums = np.zeros((threads, 2, num_bins), dtype=np.int64), np.zeros((threads, 2, num_bins))
    for start in range(0, len(x) - 1, block_rows):
        s = x[start:start + block_rows] @ x[start:].T  # (b, n - start): pairs a < b are j > i
        _kernels.similarity_histogram_block(s, start, class_end, counts, sums)
    counts, sums = counts.sum(axis=0).astype(np.float64), sums.sum(axis=0)
    return SimilarityHistograms(np.linspace(-1.0, 1.0, num_bins + 1), counts[0], counts[1], sums[0], sums[1])


def _below(h: SimilarityHistograms, count: np.ndarray, sums: np.ndarray, m: float):
    """(pairs with s <= m, sum of their s), interpolating linearly inside m's bin."""
    bins = count.size
    pos = (m + 1.0) * bins / 2.0
    j = min(int(pos), bins - 1)
    f = min(1.0, pos - j)
    return count[:j].sum() + f * count[j], sums[:j].sum() + f * sums[j]


def hard_pairs(h: SimilarityHistograms, margin_pos: float, margin_neg: float):
    """((n, sum s) of positives with s <= m+, (n, sum s) of negatives with s >= m-)."""
    m_pos, m_neg = check_margin("margin_pos", margin_pos), check_margin("margin_neg", margin_neg)
    pos = _below(h, h.pos_count, h.pos_sum, m_pos)
    n_below, s_below = _below(h, h.neg_count, h.neg_sum, m_neg)
    neg = (h.neg_count.sum() - n_below, h.neg_sum.sum() - s_below)
    return pos, neg


def penalized_shares(h: SimilarityHistograms, margin_pos: float, margin_neg: float) -> tuple[float, float]:
    """(share of positive pairs with s <= m+, share of negative pairs with s >= m-); 0 when a
    side has no pairs at all."""
    (n_pos, _), (n_neg, _) = hard_pairs(h, margin_pos, margin_neg)
    share_pos = n_pos / h.positive_pairs if h.positive_pairs else 0.0
    share_neg = n_neg / h.negative_pairs if h.negative_pairs else 0.0
    return float(share_pos), float(share_neg)


HARD_EPS = 1e-9  # fewer interpolated hard pairs than this count as none (the term is 0)


def tcm_terms(h: SimilarityHistograms, margin_pos: float = MARGIN_POS, margin_neg: float = MARGIN_NEG,
              lambda_pos: float = LAMBDA_POS, lambda_neg: float = LAMBDA_NEG) -> tuple[float, float]:
    """(lambda+ * mean (m+ - s) over hard positives, lambda- * mean (s - m-) over hard negatives)."""
    check_lambda("lambda_pos", lambda_pos)
    check_lambda("lambda_neg", lambda_neg)
    (n_pos, s_pos), (n_neg, s_neg) = hard_pairs(h, margin_pos, margin_neg)
    pos = (margin_pos * n_pos - s_pos) / n_pos if n_pos > HARD_EPS else 0.0
    neg = (s_neg - margin_neg * n_neg) / n_neg if n_neg > HARD_EPS else 0.0
    return float(lambda_pos * max(pos, 0.0)), float(lambda_neg * max(neg, 0.0))


def tcm_value(h: SimilarityHistograms, margin_pos: float = MARGIN_POS, margin_neg: float = MARGIN_NEG,
              lambda_pos: float = LAMBDA_POS, lambda_neg: float = LAMBDA_NEG) -> float:
    """L_TCM that these margins give over all the pairs (a term with no hard pair is 0)."""
    return float(sum(tcm_terms(h, margin_pos, margin_neg, lambda_pos, lambda_neg)))
