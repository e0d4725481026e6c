"""``metrics.suggest``: margins from targets against ``numpy.quantile`` of the pair similarities."""

import math

import numpy as np
import pytest
from conftest import clustered

from tcm_core.errors import TCMError
from tcm_core.metrics.similarities import pair_similarities, penalized_shares
from tcm_core.metrics.suggest import suggest_margins, suggest_margins_from_histograms


def ref_similarities(x, y):
    """(positive, negative) cosine similarities of all pairs a < b, listed."""
    x = np.asarray(x, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    a, b = np.triu_indices(len(x), 1)
    s = np.einsum("ij,ij->i", x[a], x[b])
    same = y[a] == y[b]
    return s[same], s[~same]


@pytest.mark.parametrize("far, frr", [(1e-3, 0.05), (0.0, 0.0), (0.1, 0.5), (1.0, 1.0), (0.0137, 0.2)])
def test_margins_are_the_direct_quantiles(far, frr):
    x, y = clustered(21, n=170, classes=8, dim=6)
    s_pos, s_neg = ref_similarities(x, y)
    got = suggest_margins(x, y, far=far, frr=frr)
    assert got.margin_neg == pytest.approx(np.quantile(s_neg, 1 - far), abs=1e-12)
    assert got.margin_pos == pytest.approx(np.quantile(s_pos, frr), abs=1e-12)
    # the shares they penalize, counted directly (one pair either way where a margin is a pair's s)
    assert got.share_neg == pytest.approx(np.mean(s_neg >= got.margin_neg), abs=1.01 / s_neg.size)
    assert got.share_pos == pytest.approx(np.mean(s_pos <= got.margin_pos), abs=1.01 / s_pos.size)
    assert (got.negative_pairs, got.positive_pairs) == (s_neg.size, s_pos.size)
    assert got.share_neg >= far - 1.0 / s_neg.size and got.share_pos >= frr - 1.0 / s_pos.size


def test_ties_count_whole():
    # points drawn from 12 distinct vectors: runs of exactly equal similarities; a margin on a
    # run of ties penalizes all of it
    rng = np.random.default_rng(3)
    base = rng.normal(size=(12, 3))
    x, y = base[rng.integers(0, 12, 80)], rng.integers(0, 4, 80)
    s_pos, s_neg = ref_similarities(x, y)
    for far, frr in [(0.1, 0.1), (0.3, 0.25)]:
        got = suggest_margins(x, y, far=far, frr=frr)
        assert got.margin_neg == pytest.approx(np.quantile(s_neg, 1 - far), abs=1e-12)
        assert got.margin_pos == pytest.approx(np.quantile(s_pos, frr), abs=1e-12)
        assert got.share_neg == np.mean(s_neg >= got.margin_neg - 1e-9)
        assert got.share_pos == np.mean(s_pos <= got.margin_pos + 1e-9)
        assert got.share_neg > far  # the whole run of ties at the margin, beyond the target


def test_histogram_version_within_a_bin():
    x, y = clustered(22, n=200, classes=7, dim=5)
    s_pos, s_neg = ref_similarities(x, y)
    h = pair_similarities(x, y)
    bin_width = 2.0 / h.pos_count.size
    for far, frr in [(1e-2, 0.05), (0.2, 0.3)]:
        got = suggest_margins_from_histograms(h, far=far, frr=frr)
        # within a bin of the order statistics that numpy.quantile interpolates between
        for m, s, q in ((got.margin_neg, s_neg, 1 - far), (got.margin_pos, s_pos, frr)):
            lower, higher = np.quantile(s, q, method="lower"), np.quantile(s, q, method="higher")
            assert lower - bin_width <= m <= higher + bin_width
        # the inverse of penalized_shares: its shares hit the targets
        assert (got.share_pos, got.share_neg) == penalized_shares(h, got.margin_pos, got.margin_neg)
        assert got.share_neg == pytest.approx(far, abs=1e-9) and got.share_pos == pytest.approx(frr, abs=1e-9)
        assert got.method.startswith("histogram")


def test_dict_and_train_options():
    x, y = clustered(23, n=90, classes=5, dim=4)
    got = suggest_margins(x, y)
    d = got.to_dict()
    assert d["far"] == 1e-3 and d["frr"] == 0.05 and d["method"] == "exact"
    assert d["train_options"] == f"--margin-pos {got.margin_pos:.6f} --margin-neg {got.margin_neg:.6f}"
    assert (d["note"] is None) == (got.margin_pos >= got.margin_neg)


def test_bad_input():
    x, y = clustered(24, n=40, classes=3, dim=3)
    for bad in (-0.01, 1.01, math.nan, None, "a"):
        with pytest.raises(TCMError, match="far must be a rate"):
            suggest_margins(x, y, far=bad)
        with pytest.raises(TCMError, match="frr must be a rate"):
            suggest_margins(x, y, frr=bad)
    with pytest.raises(TCMError, match="at least 2 classes"):
        suggest_margins(x, np.zeros(len(x), int))
