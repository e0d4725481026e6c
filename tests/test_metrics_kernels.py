"""The CPU fast paths of the pair pass (``pairs`` + ``_kernels``: class-sorted samples, the
threshold lookup table over s, the window pass) against direct numpy counts and the torch path,
and the bootstrap's shortcut over the reachable worst classes against a brute force."""

import dataclasses

import numpy as np
import pytest

from conftest import clustered, synthetic_curves
from tcm_core.metrics import band, eps_opis, opis, pairs, utility_curves
from tcm_core.metrics.inputs import embedding_set
from tcm_core.metrics.similarities import pair_similarities
from tcm_core.metrics.uncertainty import draw_counts, replicates_from_counts


def _all_distances(x, y):
    """Exact float64 distances of all unordered pairs, and whether each is positive."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    a, b = np.triu_indices(len(y), 1)
    return np.linalg.norm(x[a] - x[b], axis=1), y[a] == y[b], a, b


def test_lookup_table_against_direct_comparison():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0.2, 1.9, 37))
    tol = 3e-6
    lut = pairs.lookup_table(t, tol, cells=4096)
    s = rng.uniform(-1, 1, 200_000)
    cell = np.clip(((s + 1.0) * 2048).astype(int), 0, 4095)
    known = lut[cell] >= 0
    assert 0.5 < known.mean() < 1.0  # most pairs skip the exact path, some take it
    want = (1.0 - t * t / 2.0 > s[known, None]).sum(axis=1)  # thresholds rejecting s
    np.testing.assert_array_equal(lut[cell[known]], want)
    s_k = 1.0 - t * t / 2.0
    near = np.abs(s[:, None] - s_k[None, :]).min(axis=1) <= tol
    assert not (known & near).any()  # within rounding of a threshold: always the exact path
    assert (lut[np.linspace(-1, 1, 4097)[1:] > 0.998] == -1).all()  # near-duplicates: refined


@pytest.mark.parametrize("exact", [True, False])
def test_accepted_counts_equal_a_direct_count(exact):
    x, y = clustered(3, n=400, classes=9, dim=6)
    x[5] = x[6]  # a duplicate pair (distance 0) across classes when labels differ
    d, same, a, b = _all_distances(x, y)
    t = np.linspace(0.0, 2.0, 41) if not exact else np.sort(np.concatenate([np.quantile(d, [0.01, 0.3]), [0.9]]))
    pos, neg = pairs.accepted_counts(embedding_set(x, y), t, exact=exact)
    for c in range(9):
        in_c = (y[a] == c) | (y[b] == c)
        for k, tk in enumerate(t):
            assert pos[c, k] == np.sum(same & in_c & (d <= tk))
            assert neg[c, k] == np.sum(~same & in_c & (d <= tk))


def test_grid_counts_kernels_equal_torch_path(monkeypatch):
    x, y = clustered(4, n=500, classes=12, dim=5)
    es, grid = embedding_set(x, y), np.linspace(0.0, 2.0, 1025)
    kp, kn = pairs.grid_counts(es, grid)
    assert kp.shape == (12, 1025) and kp.T.flags["C_CONTIGUOUS"]  # grid-major storage
    monkeypatch.setattr(pairs, "USE_KERNELS", False)
    tp, tn = pairs.grid_counts(embedding_set(x, y), grid)
    np.testing.assert_array_equal(kp, tp)
    np.testing.assert_array_equal(kn, tn)


def test_sample_order_does_not_matter():
    x, y = clustered(5, n=300, classes=7)
    perm = np.random.default_rng(1).permutation(len(y))
    a, b = utility_curves(x, y), utility_curves(x[perm], y[perm])
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    np.testing.assert_array_equal(a.utility, b.utility)


def test_window_pass_with_a_short_first_buffer(monkeypatch):
    """Without the locating histogram the window pass guesses its buffer, and runs again when
    the guess was short: the same values as the sized pass and the torch path."""
    x, y = clustered(6, n=400, classes=8)
    es = embedding_set(x, y)
    hist = pairs._negative_histogram(es)
    windows = pairs._rank_windows(hist, np.array([10, 5000, 20000]), 40)
    sized = pairs._collect_windows(es, windows, hist)
    monkeypatch.setattr(pairs, "WINDOW_CAPACITY", 3)
    guessed = pairs._collect_windows(es, windows)
    d, same, _, _ = _all_distances(x, y)
    neg = np.sort(d[~same])
    assert len(sized) == len(guessed) >= 1
    for (b1, v1), (b2, v2) in zip(sized, guessed):
        assert b1 == b2 and v1.size > 0
        np.testing.assert_array_equal(v1, v2)
        np.testing.assert_allclose(v1, neg[b1:b1 + v1.size], atol=1e-12)  # the exact ranks


def test_pair_similarities_counts_and_sums_exactly():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 4)), rng.integers(0, 5, 300)
    h = pair_similarities(x, y, num_bins=64, block_rows=37)
    xs = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    a, b = np.triu_indices(300, 1)
    s = np.clip(np.einsum("ij,ij->i", xs[a], xs[b]).astype(np.float64), -1, 1)
    same = y[a] == y[b]
    for side, count, total in ((same, h.pos_count, h.pos_sum), (~same, h.neg_count, h.neg_sum)):
        assert count.sum() == side.sum()
        assert total.sum() == pytest.approx(s[side].sum(), abs=1e-3)
        ref, _ = np.histogram(s[side], bins=64, range=(-1, 1))
        assert np.abs(count - ref).sum() <= 4  # float32 dot products in another order: edge cases only


@pytest.mark.parametrize("eps", [0.02, 0.1])
def test_bootstrap_over_many_classes_reaches_only_the_worst(eps):
    """With 300 classes the eps-OPIS replicates look at the first classes in worst order only:
    the same numbers as the real ``opis``/``eps_opis`` on each resample."""
    curves = synthetic_curves(300, k=31)
    counts = draw_counts(300, 40, seed=3)
    reps_o, reps_e = replicates_from_counts(curves.utility, counts, eps)
    for b, row in enumerate(counts):
        idx = np.repeat(np.arange(300), row)
        r = dataclasses.replace(curves, utility=curves.utility[idx], classes=curves.classes[idx],
                                class_sizes=curves.class_sizes[idx], tpr=curves.tpr[idx], tnr=curves.tnr[idx])
        assert reps_o[b] == pytest.approx(opis(r), abs=1e-12)
        assert reps_e[b] == pytest.approx(eps_opis(r, eps), abs=1e-12)


def _three_pass(x, y, k=201, normalize=True):
    """The band's ends, then the counts: ``negative_distance_quantiles`` + ``accepted_counts``."""
    es = embedding_set(x, y, normalize=normalize)
    t = np.linspace(*pairs.negative_distance_quantiles(es, (1e-3, 1e-1)), k)
    return (t, *pairs.accepted_counts(es, t))


BAND_DATA = [clustered(9, n=500, classes=11, dim=6), clustered(10, n=400, classes=40, dim=3)]


@pytest.mark.parametrize("x,y", BAND_DATA)
def test_band_counts_in_two_passes_equal_three(monkeypatch, x, y):
    t3, pos3, neg3 = _three_pass(x, y)
    for name in ("accepted_counts", "negative_distance_quantiles"):  # the two-pass path only
        monkeypatch.setattr(pairs, name, lambda *a, **k: pytest.fail("third pass"))
    t2, pos2, neg2 = band.band_counts(embedding_set(x, y), (1e-3, 1e-1), 201)
    np.testing.assert_array_equal(t2, t3)
    np.testing.assert_array_equal(pos2, pos3)
    np.testing.assert_array_equal(neg2, neg3)


def test_band_counts_fall_back_to_a_third_pass(monkeypatch):
    x, y = BAND_DATA[0]
    want = _three_pass(x, y, k=51)
    monkeypatch.setattr(band, "_deferred_capacity", lambda *a: 1)  # a short buffer
    got = band.band_counts(embedding_set(x, y), (1e-3, 1e-1), 51)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    # intervals that miss the thresholds (as rounding beyond the float32 bound would): recounted
    monkeypatch.undo()
    wrong = band._threshold_intervals
    monkeypatch.setattr(band, "_threshold_intervals", lambda *a: wrong(*a) + 0.05)
    got = band.band_counts(embedding_set(x, y), (1e-3, 1e-1), 51)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
