"""``metrics.thresholds``: the threshold for a target FAR / FRR and the per-class rates there,
against a slow reference that lists and sorts every pair distance."""

import math

import numpy as np
import pytest
from conftest import clustered

from tcm_core.errors import TCMError
from tcm_core.metrics import pairs
from tcm_core.metrics.inputs import embedding_set
from tcm_core.metrics.thresholds import (
    find_threshold,
    max_count,
    negative_distance_ranks,
    rates_at_threshold,
)


def ref_pairs(x, y):
    """All pairs a < b: (a, b, distance, same class). Distances as the kernels compute them:
    float64 ||a - b|| of the normalized rows, squares summed in dimension order."""
    x = np.asarray(x, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    a, b = np.triu_indices(len(x), 1)
    diff = x[a] - x[b]
    acc = np.zeros(a.size)
    for k in range(x.shape[1]):  # sequential sum, bit for bit the kernels' order
        acc += diff[:, k] * diff[:, k]
    return a, b, np.sqrt(acc), y[a] == y[b]


def ref_threshold(x, y, far=None, frr=None):
    """Slow: sort the distances, take the exact order statistic, count everything at t."""
    _, _, d, same = ref_pairs(x, y)
    neg, pos = np.sort(d[~same]), np.sort(d[same])
    if far is not None:
        k = max(j for j in range(neg.size + 1) if j / neg.size <= far)
        t = 2.0 if k == neg.size else np.nextafter(neg[k], -np.inf)
    else:
        need = pos.size - max(j for j in range(pos.size + 1) if j / pos.size <= frr)
        t = 0.0 if need == 0 else pos[need - 1]
    return t, ref_rates(x, y, t)


def ref_rates(x, y, t):
    a, b, d, same = ref_pairs(x, y)
    acc = d <= t
    classes, sizes = np.unique(y, return_counts=True)
    rows = {}
    for c, s in zip(classes, sizes):
        if s < 2:
            continue
        p = same & (y[a] == c)
        nmask = ~same & ((y[a] == c) | (y[b] == c))
        rows[c] = (s, acc[nmask].mean(), 1.0 - acc[p].mean())
    return acc[~same].mean(), 1.0 - acc[same].mean(), rows


def check_against_reference(report, x, y, far=None, frr=None):
    t, (g_far, g_frr, rows) = ref_threshold(x, y, far, frr)
    assert report.threshold == t  # exact: same order statistic, same float
    assert report.far == pytest.approx(g_far, abs=1e-15)
    assert report.frr == pytest.approx(g_frr, abs=1e-15)
    assert set(report.classes.index) == set(rows)
    for c, row in report.classes.iterrows():
        size, far_c, frr_c = rows[c]
        assert (row["size"], row["far"], row["frr"]) == (size, pytest.approx(far_c, abs=1e-15),
                                                         pytest.approx(frr_c, abs=1e-15))
    return t


@pytest.mark.parametrize("far", [0.0, 1e-3, 0.02, 0.25, 1.0])
def test_far_threshold_matches_sorted_reference(far):
    x, y = clustered(3, n=160, classes=9, dim=6)
    r = find_threshold(x, y, far=far)
    check_against_reference(r, x, y, far=far)
    assert r.far <= far and r.target == "far" and r.target_rate == far
    # the next distance up would break the target: the threshold is the largest
    if far < 1.0:
        above = rates_at_threshold(x, y, min(2.0, np.nextafter(r.threshold, np.inf)))
        assert above.far > far


@pytest.mark.parametrize("frr", [0.0, 0.05, 0.3, 1.0])
def test_frr_threshold_matches_sorted_reference(frr):
    x, y = clustered(4, n=140, classes=7, dim=5)
    r = find_threshold(x, y, frr=frr)
    check_against_reference(r, x, y, frr=frr)
    assert r.frr <= frr
    if r.threshold > 0:  # any smaller threshold breaks the target: the threshold is the smallest
        assert rates_at_threshold(x, y, np.nextafter(r.threshold, -np.inf)).frr > frr


def test_ties_and_a_class_with_one_positive_pair():
    # points on a coarse grid of angles, many exact duplicates across and within classes, so the
    # order statistics sit inside runs of equal distances; class 7 has 2 samples (1 positive pair)
    rng = np.random.default_rng(5)
    angles = rng.integers(0, 12, 90) * (2 * np.pi / 12)
    x = np.stack([np.cos(angles), np.sin(angles), np.full(90, 0.5)], axis=1)
    y = rng.integers(0, 6, 90)
    x = np.concatenate([x, x[:1], x[1:2]])
    y = np.concatenate([y, [7, 7]])
    _, _, d, same = ref_pairs(x, y)
    assert np.unique(d[~same]).size < 0.01 * (~same).sum()  # heavy ties
    neg = np.sort(d[~same])
    straddled = 0
    for far in (0.1, 0.2, 0.5):
        r = find_threshold(x, y, far=far)
        check_against_reference(r, x, y, far=far)
        k = max_count(far, neg.size)
        straddled += neg[k - 1] == neg[k]  # a run of equal distances across the budget ...
        assert r.negatives_accepted == (neg <= r.threshold).sum() <= k  # ... is rejected whole
    assert straddled
    for frr in (0.1, 0.4):
        check_against_reference(find_threshold(x, y, frr=frr), x, y, frr=frr)
    r = find_threshold(x, y, far=0.2)
    assert r.classes.loc[7, "size"] == 2 and r.classes.loc[7, "frr"] in (0.0, 1.0)


def test_worst_first_order_and_singletons():
    x, y = clustered(6, n=120, classes=8, dim=4)
    x = np.concatenate([x, np.ones((1, 4))])
    y = np.concatenate([y, [42]])  # a singleton: no positives, left out of the table
    r = find_threshold(x, y, far=0.05)
    assert r.skipped_classes == 1 and 42 not in r.classes.index
    key = list(zip(r.classes["far"], r.classes["frr"]))
    assert key == sorted(key, reverse=True)
    r = find_threshold(x, y, frr=0.1)
    key = list(zip(r.classes["frr"], r.classes["far"]))
    assert key == sorted(key, reverse=True)
    d = r.to_dict()
    assert d["target_frr"] == 0.1 and d["target_far"] is None
    assert [c["class"] for c in d["classes"]] == list(r.classes.index)
    assert isinstance(d["classes"][0]["class"], int) and d["similarity"] == pytest.approx(1 - r.threshold**2 / 2)


def test_csv_export(tmp_path):
    x, y = clustered(7, n=80, classes=5, dim=4)
    y = np.array([f"c{v}" for v in y])
    r = find_threshold(x, y, far=0.01)
    r.write_csv(tmp_path / "t.csv")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "class,size,far,frr" and len(lines) == 1 + len(r.classes)
    assert lines[1].split(",")[0] == r.classes.index[0]
    r = find_threshold(x, y.astype("S"), far=0.01)  # byte-string labels: written as text
    assert r.class_records()[0]["class"] == lines[1].split(",")[0]


def test_negative_ranks_agree_with_quantiles():
    x, y = clustered(8, n=150, classes=6, dim=5)
    es = embedding_set(x, y)
    _, _, d, same = ref_pairs(x, y)
    neg = np.sort(d[~same])
    ranks = [0, 7, neg.size // 2, neg.size - 1]
    values, at_or_below = negative_distance_ranks(es, ranks)
    assert values.tolist() == neg[ranks].tolist()
    assert at_or_below.tolist() == [int((neg <= v).sum()) for v in values]
    assert pairs.negative_pair_count(es.class_sizes) == neg.size


def test_max_count_uses_the_rate_as_written():
    assert max_count(0.29, 100) == 29  # 0.29 * 100 = 28.999999999999996
    assert max_count(1e-3, 999) == 0 and max_count(1e-3, 1000) == 1
    assert max_count(1.0, 7) == 7 and max_count(0.0, 7) == 0
    for total in (3, 10, 1000):
        for rate in (0.1, 0.3, 0.7):
            j = max_count(rate, total)
            assert j / total <= rate < (j + 1) / total or j == total


def test_bad_input():
    x, y = clustered(9, n=40, classes=3, dim=3)
    with pytest.raises(TCMError, match="exactly one"):
        find_threshold(x, y)
    with pytest.raises(TCMError, match="exactly one"):
        find_threshold(x, y, far=0.1, frr=0.1)
    for bad in (-0.1, 1.5, math.nan, "x"):
        with pytest.raises(TCMError, match="far must be a rate"):
            find_threshold(x, y, far=bad)
    with pytest.raises(TCMError, match="threshold"):
        rates_at_threshold(x, y, 2.5)
    # identical embeddings with different labels: even t = 0 accepts those negatives
    z = np.concatenate([x, x[:3]])
    w = np.concatenate([y, (y[:3] + 1) % 3])
    with pytest.raises(TCMError, match="distance 0"):
        find_threshold(z, w, far=0.0)


def test_torch_path_agrees_with_kernels(monkeypatch):
    x, y = clustered(10, n=120, classes=6, dim=5)
    kernels = find_threshold(x, y, far=0.02), find_threshold(x, y, frr=0.1)
    monkeypatch.setattr(pairs, "USE_KERNELS", False)  # the GPU's path, here on the CPU
    for a, b in zip(kernels, (find_threshold(x, y, far=0.02), find_threshold(x, y, frr=0.1))):
        assert b.threshold == pytest.approx(a.threshold, abs=1e-12)
        assert (b.negatives_accepted, b.positives_rejected) == (a.negatives_accepted, a.positives_rejected)
        assert b.classes.equals(a.classes)
