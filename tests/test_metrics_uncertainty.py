"""Intervals for OPIS and its change (tcm_core.metrics.uncertainty): the vectorized bootstrap
against a brute-force one built on the real ``opis``/``eps_opis``, t intervals by hand."""

import dataclasses
import json
import math

import numpy as np
import pytest
from conftest import clustered
from scipy import stats

from tcm_core.errors import TCMError
from tcm_core.metrics.opis import eps_opis, opis
from tcm_core.metrics.uncertainty import (
    Interval,
    bootstrap_change,
    bootstrap_scores,
    draw_counts,
    replicates_from_counts,
    seed_interval,
    summarize_changes,
)
from tcm_core.metrics.utility import utility_curves


@pytest.fixture(scope="module")
def curves():
    x, y = clustered(0, n=600, classes=30)
    return utility_curves(x, y, num_thresholds=51)


def resampled(curves, idx):
    """The curves of the classes ``idx`` (repeats allowed), as a real ``UtilityCurves``."""
    return dataclasses.replace(curves, utility=curves.utility[idx], classes=curves.classes[idx],
                               class_sizes=curves.class_sizes[idx], tpr=curves.tpr[idx], tnr=curves.tnr[idx])


def brute_force(curves, eps, resamples, seed):
    """Resample classes with replacement by indexing them, the same draws as the module's."""
    t = curves.utility.shape[0]
    draws = np.random.default_rng(seed).integers(0, t, size=(resamples, t))
    o, e = [], []
    for row in draws:
        r = resampled(curves, np.sort(row))
        o.append(opis(r))
        e.append(eps_opis(r, eps))
    return np.array(o), np.array(e)


def percentile_interval(reps, level=0.95):
    a = 100 * (1 - level) / 2
    return tuple(np.percentile(reps, [a, 100 - a]))


# ------------------------------------------------------------------ bootstrap over classes

def test_draw_counts_are_the_documented_draws():
    counts = draw_counts(7, 50, seed=3)
    draws = np.random.default_rng(3).integers(0, 7, size=(50, 7))
    assert counts.shape == (50, 7) and (counts.sum(axis=1) == 7).all()
    for row, c in zip(draws, counts):
        np.testing.assert_array_equal(np.bincount(row, minlength=7), c)


@pytest.mark.parametrize("eps", [0.1, 0.25])
def test_vectorized_bootstrap_equals_brute_force(curves, eps):
    means = curves.utility.mean(axis=1)
    assert np.unique(means).size == means.size  # no ties: eps-OPIS must match exactly
    reps_o, reps_e = replicates_from_counts(curves.utility, draw_counts(30, 200, seed=1), eps)
    bf_o, bf_e = brute_force(curves, eps, 200, seed=1)
    np.testing.assert_allclose(reps_o, bf_o, rtol=0, atol=1e-12)
    np.testing.assert_allclose(reps_e, bf_e, rtol=0, atol=1e-12)


def test_resamples_that_skip_the_worst_classes_widen_the_search(curves):
    """Only about n_worst classes (in worst-first order) are looked at first; resamples that
    draw none of them must still find their worst among the better classes."""
    order = np.argsort(curves.utility.mean(axis=1), kind="stable")
    rows = [np.full(30, order[-1]),  # the best class 30 times
            np.repeat(order[-3:], 10),  # only the three best
            np.r_[order[0], np.repeat(order[-2:], [15, 14])],  # one worst class, then the best two
            np.random.default_rng(0).integers(0, 30, 30)]
    counts = np.stack([np.bincount(r, minlength=30) for r in rows])
    reps_o, reps_e = replicates_from_counts(curves.utility, counts, 0.1)
    for row, o, e in zip(rows, reps_o, reps_e):
        r = resampled(curves, np.sort(row))
        assert o == pytest.approx(opis(r), abs=1e-12) and e == pytest.approx(eps_opis(r, 0.1), abs=1e-12)


def test_replicates_do_not_depend_on_the_block_size(curves, monkeypatch):
    import tcm_core.metrics.uncertainty as unc

    counts = draw_counts(30, 100, seed=2)
    whole = replicates_from_counts(curves.utility, counts, 0.1)
    monkeypatch.setattr(unc, "_BLOCK_ELEMENTS", 30 * 7)  # blocks of 7 resamples, the last one short
    blocks = replicates_from_counts(curves.utility, counts, 0.1)
    for a, b in zip(whole, blocks):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)


def test_bootstrap_scores_is_the_percentile_interval_of_those_replicates(curves):
    io, ie = bootstrap_scores(curves, 0.1, resamples=300, seed=5)
    bf_o, bf_e = brute_force(curves, 0.1, 300, seed=5)
    assert io.value == opis(curves) and ie.value == eps_opis(curves, 0.1)
    np.testing.assert_allclose((io.low, io.high), percentile_interval(bf_o), atol=1e-12)
    np.testing.assert_allclose((ie.low, ie.high), percentile_interval(bf_e), atol=1e-12)
    assert io.n == ie.n == 30 and io.level == 0.95
    assert io.method == "bootstrap over 30 classes, 300 resamples"
    assert bootstrap_scores(curves, 0.1, resamples=300, seed=5) == (io, ie)  # seeded


def test_ties_in_class_means_follow_worst_classes_order():
    """Tied mean utilities: the stable class order decides, as in ``opis.worst_classes``."""
    x, y = clustered(2, n=200, classes=8)
    c = utility_curves(x, y, num_thresholds=11)
    u = c.utility.copy()
    u[3] = u[1][::-1]  # same mean as class 1, a different curve
    u[5] = u[1]
    c = dataclasses.replace(c, utility=u)
    reps_o, reps_e = replicates_from_counts(c.utility, draw_counts(8, 300, seed=0), 0.3)
    bf_o, bf_e = brute_force(c, 0.3, 300, seed=0)
    np.testing.assert_allclose(reps_o, bf_o, atol=1e-12)
    np.testing.assert_allclose(reps_e, bf_e, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_intervals_bracket_the_point_value(seed):
    x, y = clustered(seed, n=800, classes=40)
    io, ie = bootstrap_scores(utility_curves(x, y), 0.1, seed=seed)
    for iv in (io, ie):
        assert iv.low < iv.value < iv.high
        assert iv.low >= 0 and iv.excludes_zero  # scores are >= 0, and positive here


def test_bootstrap_rejects_bad_settings(curves):
    with pytest.raises(TCMError, match="resamples"):
        bootstrap_scores(curves, resamples=1)
    with pytest.raises(TCMError, match="level"):
        bootstrap_scores(curves, level=95)
    with pytest.raises(TCMError, match="eps"):
        bootstrap_scores(curves, eps=0.99)  # no class left in the rest


# ------------------------------------------------------------------ paired change

def test_identical_runs_give_a_degenerate_interval_at_zero(curves):
    io, ie = bootstrap_change(curves, curves, seed=0)
    for iv in (io, ie):
        assert iv.value == iv.low == iv.high == 0.0
        assert not iv.excludes_zero
    assert io.method.startswith("paired bootstrap over 30 shared classes")


def test_uniformly_lower_spread_gives_an_interval_below_zero(curves):
    """+TCM with every class's utility pulled halfway to the across-class mean: OPIS x 0.25 and
    eps-OPIS x 0.25 in every resample, so the change is -75% with no spread at all; with a bit
    of per-class noise on top it stays well below 0."""
    u = curves.utility
    tcm = dataclasses.replace(curves, utility=u.mean(axis=0) + 0.5 * (u - u.mean(axis=0)))
    io, ie = bootstrap_change(curves, tcm, seed=0)
    for iv in (io, ie):
        assert iv.value == pytest.approx(-75.0)
        assert iv.low == pytest.approx(-75.0) and iv.high == pytest.approx(-75.0)
    rng = np.random.default_rng(0)
    noisy = dataclasses.replace(tcm, utility=np.clip(tcm.utility + rng.normal(0, 0.02, u.shape), 0, 1))
    io, ie = bootstrap_change(curves, noisy, seed=0)
    for iv in (io, ie):
        assert iv.high < 0 and iv.excludes_zero and iv.low < iv.value < iv.high


def test_change_is_paired_by_class_name_and_matches_a_brute_force(curves):
    x, y = clustered(1, n=600, classes=30)
    other = utility_curves(x, y, num_thresholds=51)
    # +TCM lists its classes in another order and misses two of them: matching is by name
    keep = np.random.default_rng(0).permutation(30)[:28]
    tcm = resampled(other, keep)
    io, ie = bootstrap_change(curves, tcm, 0.1, resamples=200, seed=4)
    shared = np.sort(keep)  # curves.classes are 0..29 in order
    base = resampled(curves, shared)
    tcm_rows = np.array([np.flatnonzero(tcm.classes == c)[0] for c in curves.classes[shared]])
    tcm_sorted = resampled(tcm, tcm_rows)
    assert io.value == pytest.approx(100 * (opis(tcm_sorted) - opis(base)) / opis(base), abs=1e-12)
    draws = np.random.default_rng(4).integers(0, 28, size=(200, 28))
    ch_o, ch_e = [], []
    for row in draws:
        b, t = resampled(base, np.sort(row)), resampled(tcm_sorted, np.sort(row))
        ch_o.append(100 * (opis(t) - opis(b)) / opis(b))
        ch_e.append(100 * (eps_opis(t) - eps_opis(b)) / eps_opis(b))
    np.testing.assert_allclose((io.low, io.high), percentile_interval(ch_o), atol=1e-9)
    np.testing.assert_allclose((ie.low, ie.high), percentile_interval(ch_e), atol=1e-9)
    assert io.n == 28 and "2 class(es) not in both runs left out" in io.method


def test_change_from_a_zero_baseline_is_nan_not_a_crash(curves):
    flat = dataclasses.replace(curves, utility=np.full_like(curves.utility, 0.5))
    io, ie = bootstrap_change(flat, curves, seed=0)
    for iv in (io, ie):
        assert math.isnan(iv.value) and math.isnan(iv.low) and math.isnan(iv.high)
        assert not iv.excludes_zero


def test_change_needs_shared_classes(curves):
    other = dataclasses.replace(curves, classes=curves.classes + 1000)
    with pytest.raises(TCMError, match="share 0 test class"):
        bootstrap_change(curves, other)


# ------------------------------------------------------------------ across seeds

def test_seed_interval_textbook_case():
    iv = seed_interval([1, 2, 3, 4])
    assert iv.value == 2.5 and iv.n == 4 and iv.level == 0.95
    # s = 1.29099, t_{0.975,3} = 3.182446: 2.5 -+ 3.182446 * 1.29099 / 2
    assert iv.low == pytest.approx(0.4457, abs=1e-4) and iv.high == pytest.approx(4.5543, abs=1e-4)
    assert iv.method == "t over 4 seeds" and iv.excludes_zero


@pytest.mark.parametrize("values,level", [([-3.0, -10.5, 1.2], 0.95), ([0.1, 0.4, -0.2, 0.3, 0.0], 0.9)])
def test_seed_interval_matches_scipy(values, level):
    iv = seed_interval(values, level)
    lo, hi = stats.t.interval(level, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert iv.value == pytest.approx(np.mean(values))
    assert (iv.low, iv.high) == pytest.approx((lo, hi), abs=1e-12)


def test_seed_interval_with_one_seed_has_no_bounds():
    iv = seed_interval([-12.5])
    assert iv.value == -12.5 and iv.n == 1
    assert math.isnan(iv.low) and math.isnan(iv.high) and not iv.excludes_zero
    assert "single seed" in iv.method
    empty = seed_interval([])
    assert empty.n == 0 and math.isnan(empty.value)


def test_seed_interval_leaves_out_undefined_values():
    iv = seed_interval([1.0, float("nan"), 3.0, None])
    assert iv.n == 2 and iv.value == 2.0 and "2 undefined" in iv.method


def per_seed_runs():
    return [
        {"seed": 0, "baseline": {"opis": 0.020, "eps_opis": 0.30, "recall_at_1": 0.61},
         "tcm": {"opis": 0.012, "eps_opis": 0.21, "recall_at_1": 0.63}},
        {"seed": 1, "baseline": {"opis": 0.025, "eps_opis": 0.28, "recall_at_1": 0.60},
         "tcm": {"opis": 0.011, "eps_opis": 0.24, "recall_at_1": 0.60}},
        {"seed": 2, "baseline": {"opis": 0.018, "eps_opis": 0.33, "recall_at_1": 0.62},
         "tcm": {"opis": 0.013, "eps_opis": 0.20, "recall_at_1": 0.615}},
    ]


def test_summarize_changes_against_an_independent_computation():
    runs = per_seed_runs()
    out = summarize_changes(runs)
    json.dumps(out)  # plain JSON
    expected = {
        "opis_change_pct": [100 * (r["tcm"]["opis"] / r["baseline"]["opis"] - 1) for r in runs],
        "eps_opis_change_pct": [100 * (r["tcm"]["eps_opis"] / r["baseline"]["eps_opis"] - 1) for r in runs],
        "recall_at_1_change_pts": [100 * (r["tcm"]["recall_at_1"] - r["baseline"]["recall_at_1"]) for r in runs],
    }
    assert set(out) == set(expected)
    for key, changes in expected.items():
        m, s, n = np.mean(changes), np.std(changes, ddof=1), len(changes)
        half = stats.t.ppf(0.975, n - 1) * s / math.sqrt(n)
        assert set(out[key]) == {"mean", "ci_low", "ci_high", "n"}
        assert out[key]["n"] == 3 and isinstance(out[key]["n"], int)
        assert out[key]["mean"] == pytest.approx(m, abs=1e-9)
        assert out[key]["ci_low"] == pytest.approx(m - half, abs=1e-9)
        assert out[key]["ci_high"] == pytest.approx(m + half, abs=1e-9)
        assert all(type(out[key][f]) is float for f in ("mean", "ci_low", "ci_high"))


def test_summarize_changes_writes_nan_as_none():
    out = summarize_changes(per_seed_runs()[:1])
    assert out["opis_change_pct"]["ci_low"] is None and out["opis_change_pct"]["ci_high"] is None
    assert out["opis_change_pct"]["n"] == 1 and out["opis_change_pct"]["mean"] == pytest.approx(-40.0)
    zero = [{"baseline": {"opis": 0.0, "eps_opis": 0.1, "recall_at_1": 0.5},
             "tcm": {"opis": 0.01, "eps_opis": 0.1, "recall_at_1": 0.5}}]
    out = summarize_changes(zero)
    assert out["opis_change_pct"] == {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    json.dumps(out)


def test_interval_as_dict_and_excludes_zero():
    iv = Interval(-20.0, -35.0, -5.0, 0.95, 3, "t over 3 seeds")
    assert iv.excludes_zero
    assert not Interval(-20.0, -35.0, 5.0, 0.95, 3, "t over 3 seeds").excludes_zero
    d = Interval(1.0, math.nan, math.nan, 0.95, 1, "x").as_dict()
    assert d["low"] is None and json.loads(json.dumps(d)) == d


def test_recall_change_bootstrap_against_a_loop():
    from tcm_core.metrics import recall_at_k
    from tcm_core.metrics.retrieval import class_hits
    from tcm_core.metrics.uncertainty import bootstrap_recall_change, draw_counts

    x, y = clustered(21, n=240, classes=8, dim=6)
    x2 = x + np.random.default_rng(1).normal(scale=0.4, size=x.shape)
    base, tcm = class_hits(x, y), class_hits(x2, y)
    assert base.recall_at_1 == recall_at_k(x, y)[1] and tcm.recall_at_1 == recall_at_k(x2, y)[1]
    got = bootstrap_recall_change(base, tcm, resamples=200, seed=5)
    assert got.value == pytest.approx(100 * (tcm.recall_at_1 - base.recall_at_1))
    # brute force: build each resample's query list class by class, R@1 = mean hit
    reps = []
    for row in draw_counts(8, 200, 5):
        hb = sum(c * base.hits[i] for i, c in enumerate(row)) / sum(c * base.sizes[i] for i, c in enumerate(row))
        ht = sum(c * tcm.hits[i] for i, c in enumerate(row)) / sum(c * tcm.sizes[i] for i, c in enumerate(row))
        reps.append(100 * (ht - hb))
    assert (got.low, got.high) == (pytest.approx(np.percentile(reps, 2.5)), pytest.approx(np.percentile(reps, 97.5)))
    same = bootstrap_recall_change(base, base)
    assert same.value == same.low == same.high == 0.0 and not same.excludes_zero
