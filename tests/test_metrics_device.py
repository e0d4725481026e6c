"""The device path (``device_pairs``: torch tensor ops, run here with device="cpu") against the
numba kernels, bit for bit: counts, the locating histogram, the quantile windows, evaluations."""

import math

import numba
import numpy as np
import pytest
import torch
from conftest import clustered

from tcm_core.errors import TCMError
from tcm_core.metrics import (
    EvalSettings,
    _kernels,
    device_pairs,
    embedding_set,
    evaluate,
    pairs,
    similarity_bounds,
)
from tcm_core.metrics.thresholds import negative_distance_ranks


def _ties():
    """Signed axis vectors: distances exactly 0 (duplicates), sqrt(2) or 2, so quantiles and
    thresholds land on tied values; plus near-duplicates (similarity above 0.998)."""
    rng = np.random.default_rng(1)
    axes = np.concatenate([np.eye(4), -np.eye(4)])
    x = np.concatenate([axes[rng.integers(0, 8, 150)], rng.normal(size=(90, 4))])
    x[200:230] = x[170:200] + 1e-3 * rng.normal(size=(30, 4))
    return x, rng.integers(0, 5, 240)


def _datasets():
    yield "clustered", *clustered(0, n=300, classes=10)
    yield "ties", *_ties()
    x, y = clustered(2, n=260, classes=6, dim=40)  # d = 40: a wider rounding tolerance
    yield "unbalanced", x, np.concatenate([np.zeros(120, int), y[120:]])


DATA = list(_datasets())
IDS = [d[0] for d in DATA]


@pytest.fixture
def small_blocks(monkeypatch):
    """1 MiB budget: many blocks, and refinement chunks of 1024 pairs that flush mid-pass."""
    monkeypatch.setenv(device_pairs.BUDGET_ENV, str(1 << 20))


def both(fn, es):
    """``fn(es)`` through the kernels and through the device path."""
    old = pairs.USE_KERNELS
    try:
        pairs.USE_KERNELS = True
        kernels = fn(es)
        pairs.USE_KERNELS = False
        return kernels, fn(es)
    finally:
        pairs.USE_KERNELS = old


@pytest.mark.parametrize("name,x,y", DATA, ids=IDS)
def test_counts_identical(small_blocks, name, x, y):
    es = embedding_set(x, y, device="cpu")
    lo, hi = pairs.negative_distance_quantiles(es, [1e-3, 0.3])
    for t, exact in [(np.linspace(lo, hi, 51), True), (np.linspace(0.0, 2.0, 257), False),
                     (np.array([0.0, math.sqrt(2.0), 2.0]), True), (np.array([0.05, 0.06]), True)]:
        (pk, nk), (pd, nd) = both(lambda es, t=t, exact=exact: pairs.accepted_counts(es, t, exact=exact), es)
        np.testing.assert_array_equal(pd, pk)
        np.testing.assert_array_equal(nd, nk)


@pytest.mark.parametrize("name,x,y", DATA, ids=IDS)
def test_quantile_passes_identical(small_blocks, name, x, y):
    es = embedding_set(x, y, device="cpu")
    # the kernels bin 1 - s (no square root per pair), the device path the distance: the same
    # negative pairs in bins of another width, so compare what the windows hold, rank by rank
    hk, hd = both(pairs._negative_histogram, es)
    m = pairs.negative_pair_count(es.class_sizes)
    assert hk.sum() == hd.sum() == m
    ranks = np.array([0, 7, m // 3, m - 1])

    def ranked(es):  # rank -> value of every pair in the windows located by this backend
        windows = pairs._rank_windows(pairs._negative_histogram(es), ranks)
        collected = pairs._collect_windows(es, windows)
        for below, values in collected:
            assert np.all(np.diff(values) >= 0)
        return {below + i: v for below, values in collected for i, v in enumerate(values.tolist())}

    rk_, rd_ = both(ranked, es)
    assert set(ranks.tolist()) <= set(rk_) & set(rd_)
    common = sorted(set(rk_) & set(rd_))
    assert [rd_[r] for r in common] == [rk_[r] for r in common]  # the same float64 numbers, not just close
    qk, qd = both(lambda es: pairs.negative_distance_quantiles(es, [0.0, 1e-3, 0.25, 0.5, 1.0]), es)
    np.testing.assert_array_equal(qd, qk)
    rk, rd = both(lambda es: negative_distance_ranks(es, [0, 5, 1000]), es)
    np.testing.assert_array_equal(rd[0], rk[0])
    np.testing.assert_array_equal(rd[1], rk[1])


def test_far_band_ends_on_ties_and_whole_evaluation_identical(small_blocks):
    x, y = _ties()  # negatives at distance 0 up to FAR 0.049, sqrt(2) from 0.36 to 0.65, 2 above 0.95
    for far_range, ends in [((0.02, 0.5), [0.0, math.sqrt(2.0)]), ((0.4, 0.97), [math.sqrt(2.0), 2.0])]:
        settings = EvalSettings(far_range=far_range, num_thresholds=101)
        k, d = both(lambda _, s=settings: evaluate(x, y, s, device="cpu").to_dict(), None)
        assert d == k
        assert [k["t_min"], k["t_max"]] == ends  # both ends on tied values


def test_exact_distances_and_sqrt_are_the_kernels_bits():
    x, y = clustered(3, n=200, classes=5, dim=33)
    es = embedding_set(x, y, device="cpu")
    dp = device_pairs.DevicePairs(es, device_pairs.SCAN_BYTES_PER_PAIR)
    a, b = torch.triu_indices(es.n, es.n, 1)
    got = dp.exact_distances(a, b).numpy()
    want = _exact_distances_numba(es.exact, a.numpy(), b.numpy())
    np.testing.assert_array_equal(got, want)
    v = torch.rand(100_000, dtype=torch.float64) * 4
    np.testing.assert_array_equal(device_pairs.sqrt_(v.clone()).numpy(), np.sqrt(v.numpy()))


@numba.njit
def _exact_distances_numba(emb, a, b):
    out = np.empty(a.size)
    for p in range(a.size):
        out[p] = _kernels.exact_distance(emb, a[p], b[p])
    return out


def test_similarity_cut_points_are_exact():
    rng = np.random.default_rng(0)
    s = np.concatenate([rng.uniform(-1.001, 1.001, 300_000), [-1, 0, 1, 0.998]]).astype(np.float32)
    bounds = similarity_bounds.bin_bounds(1 << 12)
    s = np.concatenate([s, bounds, np.nextafter(bounds, np.float32(2)), np.nextafter(bounds, np.float32(-2))])
    d = similarity_bounds.distance_of_similarity(s)
    want = np.minimum((d * ((1 << 12) / 2.0)).astype(np.int64), (1 << 12) - 1)
    np.testing.assert_array_equal((1 << 12) - 1 - np.searchsorted(bounds, s, side="left"), want)
    dist = np.array([0.0, 1e-9, 0.3, 1.0, math.sqrt(2.0), 1.9999, 2.0])
    for limit, cut in zip(dist, similarity_bounds.smallest_similarity_within(dist)):
        near = np.array([cut, np.nextafter(cut, np.float32(-2))], dtype=np.float32)
        assert list(similarity_bounds.distance_of_similarity(near) <= limit) == [True, False]
        np.testing.assert_array_equal(d <= limit, s >= cut)
    r = similarity_bounds.refine_similarity()
    assert np.float32(r) >= 0.998 > np.float64(np.nextafter(np.float32(r), np.float32(0)))


def test_blocks_follow_the_budget(monkeypatch):
    assert device_pairs.block_rows(1_000_000, 80, 16 << 30) == 214
    assert device_pairs.block_rows(1000, 80, 16 << 30) == 125  # at least ~8 blocks
    assert device_pairs.block_rows(10**9, 80, 1 << 20) == 1
    monkeypatch.delenv(device_pairs.BUDGET_ENV, raising=False)
    assert device_pairs.memory_budget(device=torch.device("cpu")) == device_pairs.CPU_BUDGET
    monkeypatch.setenv(device_pairs.BUDGET_ENV, "8e9")
    assert device_pairs.memory_budget() == 8 * 10**9
    assert device_pairs.memory_budget(1 << 21) == 1 << 21
    for bad in ["lots", "100"]:
        monkeypatch.setenv(device_pairs.BUDGET_ENV, bad)
        with pytest.raises(TCMError, match="TCM_MEMORY_BUDGET_BYTES|at least 1 MiB"):
            device_pairs.memory_budget()


def test_tf32_setting_is_overridden_and_restored():
    x, y = clustered(4, n=120, classes=4, dim=16)
    es = embedding_set(x, y, device="cpu")
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        dp = device_pairs.DevicePairs(es, 32)
        for _ in dp.blocks():
            assert torch.get_float32_matmul_precision() == "highest"
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)


def test_near_threshold_test_is_the_kernels():
    """Distances at the edges of the thresholds' rounding bands, both sides, below the first
    and above the last threshold: refined exactly where ``count_block`` refines."""
    t = np.linspace(0.2, 1.8, 101)  # base also reaches below t[0] and above t[-1]
    sim_tol = 128 * 6e-8
    rng = np.random.default_rng(5)
    base = rng.choice(t, 200_000) + rng.uniform(-3e-5, 3e-5, 200_000)
    step = sim_tol / np.maximum(base, 1e-3)
    d = np.concatenate([base, *(t.repeat(2000) + sgn * np.nextafter(sim_tol / t.repeat(2000), k)
                                for sgn in (-1, 1) for k in (0, 1))])
    d = np.concatenate([d, d + step[0] * 1e-12])
    first = np.searchsorted(t, d, side="left")
    tol = sim_tol / np.maximum(d, 1e-3)
    want = ((first < t.size) & (t[np.minimum(first, t.size - 1)] - d <= tol)) | (
        (first > 0) & (d - t[np.maximum(first - 1, 0)] <= tol))
    got = device_pairs._near_threshold(torch.from_numpy(d), torch.from_numpy(first), torch.from_numpy(t), sim_tol)
    np.testing.assert_array_equal(got.numpy(), want)
