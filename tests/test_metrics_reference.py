"""The fast paths against the slow reference of METHOD.md (tests/reference.py)."""

import numpy as np
import pytest
import torch

import reference as ref
from conftest import clustered
from tcm_core.metrics.evaluation import EvalSettings, evaluate, evaluate_embedding_set
from tcm_core.metrics.inputs import embedding_set
from tcm_core.metrics.retrieval import class_hits_from_set, recall_at_k_from_set
from tcm_core.metrics import (calibration_range, distance_histograms, eps_opis, map_at_r, opis,
                              recall_at_k, utility_curves)
from tcm_core.metrics import pairs


@pytest.fixture(params=["kernels", "torch"])
def backend(request, monkeypatch):
    """Run each test through the numba kernels and through the torch tensor path."""
    monkeypatch.setattr(pairs, "USE_KERNELS", request.param == "kernels")
    return request.param


def _datasets():
    x, y = clustered(0, n=300, classes=10)
    yield "clustered", x, y
    rng = np.random.default_rng(1)
    # ties: signed axis vectors have distances exactly 0, sqrt(2) or 2 in any float arithmetic,
    # so hundreds of pairs tie, duplicates included, and FAR quantiles land on tied values
    axes = np.concatenate([np.eye(4), -np.eye(4)])
    pick = rng.integers(0, 8, 150)
    yt = rng.integers(0, 5, 240)
    xt = np.concatenate([axes[pick], rng.normal(size=(90, 4))])
    yield "ties", xt, yt
    # unbalanced classes with singletons (left out of OPIS, still negatives for the others)
    xu, yu = clustered(2, n=260, classes=6)
    yu = np.concatenate([yu, [100, 101, 102]])
    xu = np.concatenate([xu, np.random.default_rng(3).normal(size=(3, xu.shape[1]))])
    yu[:120] = 0  # one big class
    yield "unbalanced+singletons", xu, yu
    xs, ys = clustered(4, n=200, classes=7)
    yield "string labels", xs, np.array([f"species_{v}" for v in ys])


DATA = list(_datasets())


def _max_flip(curves):
    """Largest change of a rate that one pair crossing a threshold can cause (float32 vs 64)."""
    sizes = curves.class_sizes.astype(float)
    n = sizes.sum() + curves.skipped_classes.size
    return 1.0 / min((sizes * (sizes - 1) / 2).min(), (sizes * (n - sizes)).min())


@pytest.mark.parametrize("name,x,y", DATA, ids=[d[0] for d in DATA])
def test_utility_curves_match_reference(backend, name, x, y):
    r = ref.evaluate(x, y)
    c = utility_curves(x, y)
    assert c.t_min == pytest.approx(r["t_min"], abs=1e-6)
    assert c.t_max == pytest.approx(r["t_max"], abs=1e-6)
    assert np.abs(c.utility - r["utility"]).max() <= 2 * _max_flip(c)
    assert opis(c) == pytest.approx(r["opis"], rel=2e-3)
    assert eps_opis(c) == pytest.approx(r["eps_opis"], rel=2e-3)
    assert recall_at_k(x, y)[1] == pytest.approx(r["recall_at_1"])


@pytest.mark.parametrize("name,x,y", DATA, ids=[d[0] for d in DATA])
def test_distance_range_and_beta(backend, name, x, y):
    t = np.linspace(0.4, 1.6, 17)
    classes, u = ref.utility_table(x, y, t, beta=2.0)
    c = utility_curves(x, y, distance_range=(0.4, 1.6), num_thresholds=17, beta=2.0)
    assert list(c.classes) == list(classes)
    assert np.abs(c.utility - u).max() <= 2 * _max_flip(c)


def test_singletons_reported(backend):
    _, x, y = DATA[2]
    c = utility_curves(x, y)
    assert sorted(c.skipped_classes.tolist()) == [100, 101, 102]
    assert 100 not in c.classes


def test_far_is_the_global_false_accept_rate(backend):
    x, y = clustered(5, n=200)
    c = utility_curves(x, y, distance_range=(0.5, 1.5), num_thresholds=11)
    a, b, d = ref.pair_table(x, y)
    neg = d[y[a] != y[b]]
    np.testing.assert_allclose(c.far, [(neg <= t).mean() for t in c.thresholds], atol=2 / neg.size)
    lo, hi = calibration_range(x, y, far_range=(0.01, 0.2))
    np.testing.assert_allclose([lo, hi], np.quantile(neg, [0.01, 0.2]), atol=1e-6)


def test_histograms_agree_with_exact_path():
    """The slider path (fine histograms) agrees with the exact path to 0.1% in OPIS."""
    x, y = clustered(6, n=1500, classes=40, dim=16)
    hist = distance_histograms(x, y)
    for far_range, k, beta in [((1e-3, 1e-1), 201, 1.0), ((1e-2, 0.3), 51, 0.5), ((0.05, 0.5), 101, 2.0)]:
        exact = utility_curves(x, y, far_range=far_range, num_thresholds=k, beta=beta)
        fast = hist.curves(far_range=far_range, num_thresholds=k, beta=beta)
        assert fast.t_min == pytest.approx(exact.t_min, abs=2e-4)
        assert fast.t_max == pytest.approx(exact.t_max, abs=2e-4)
        assert opis(fast) == pytest.approx(opis(exact), rel=1e-3)
        assert eps_opis(fast) == pytest.approx(eps_opis(exact), rel=1e-3)
    exact = utility_curves(x, y, distance_range=(0.6, 1.4))
    fast = hist.curves(distance_range=(0.6, 1.4))
    assert opis(fast) == pytest.approx(opis(exact), rel=1e-3)


def test_invariances():
    x, y = clustered(7, n=250)
    base = utility_curves(x, y)
    perm = np.random.default_rng(0).permutation(len(y))
    shuffled = utility_curves(x[perm], y[perm])
    assert opis(shuffled) == pytest.approx(opis(base), rel=1e-6)
    renamed = utility_curves(x, np.array(["c%02d" % (9 - v) for v in y]))
    assert opis(renamed) == pytest.approx(opis(base), rel=1e-6)
    assert eps_opis(renamed) == pytest.approx(eps_opis(base), rel=1e-6)
    scaled = utility_curves(x * np.random.default_rng(1).uniform(0.1, 10, (len(y), 1)), y)
    assert opis(scaled) == pytest.approx(opis(base), rel=1e-5)
    assert scaled.t_min == pytest.approx(base.t_min, abs=1e-6)


def test_torch_inputs_and_not_normalized():
    x, y = clustered(8, n=200)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    a = utility_curves(torch.tensor(xn), torch.tensor(y))
    b = utility_curves(xn, y, normalize=False)
    assert opis(a) == pytest.approx(opis(b), rel=1e-6)


def test_map_at_r_by_hand():
    # 1-D points: class 0 at angles 0, 10, 20 deg; class 1 at 90, 95 deg (on the circle)
    ang = np.deg2rad([0, 10, 20, 90, 95])
    x = np.stack([np.cos(ang), np.sin(ang)], 1)
    y = np.array([0, 0, 0, 1, 1])
    # class 0 queries have R=2 and both nearest neighbours relevant: AP = 1;
    # class 1 queries have R=1 and the nearest is the other class-1 point: AP = 1
    assert map_at_r(x, y) == pytest.approx(1.0)
    y2 = np.array([0, 1, 0, 1, 0])
    # query 0 (R=2): neighbours 10(c1), 20(c0) -> (0 + 1/2)/2 = 0.25
    # query 10 (R=1): nearest 0 or 20 (both 10 deg, c0) -> 0
    # query 20 (R=2): 10(c1), 0(c0) -> 0.25 ; query 90 (R=1): 95 (c0) -> 0 ; query 95 (R=2): 90(c1)... -> see below
    # query 95 (c0, R=2): neighbours 90 (c1), 20 (c0) -> (0 + 1/2)/2 = 0.25
    assert map_at_r(x, y2) == pytest.approx((0.25 + 0 + 0.25 + 0 + 0.25) / 5)


def test_evaluate_matches_reference_on_unseen_data():
    x, y = clustered(9, n=400, classes=15, dim=12)
    r = ref.evaluate(x, y, far_range=(0.01, 0.2), k=101, beta=1.0, eps=0.2)
    settings = EvalSettings(far_range=(0.01, 0.2), num_thresholds=101, eps=0.2)
    e = evaluate(x, y, settings)
    es = embedding_set(x, y)  # R@1 from the class hits (one nearest-neighbour pass): the same numbers
    hits = class_hits_from_set(es)
    assert hits.recall_at_1 == recall_at_k_from_set(es, (1,))[1]
    assert evaluate_embedding_set(es, settings, hits=hits) == e
    assert e.opis == pytest.approx(r["opis"], rel=2e-3)
    assert e.eps_opis == pytest.approx(r["eps_opis"], rel=2e-3)
    assert e.t_min == pytest.approx(r["t_min"], abs=1e-4) and e.t_max == pytest.approx(r["t_max"], abs=1e-4)
    assert e.recall_at_1 == r["recall_at_1"]
    assert e.n == 400 and e.dim == 12 and e.n_classes == 15
