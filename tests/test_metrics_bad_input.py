"""Every bad input ends in one TCMError (library) / one line and exit 2 (CLI)."""

import numpy as np
import pytest

from conftest import clustered
from tcm_core.errors import TCMError
from tcm_core.metrics.evaluation import EvalSettings, evaluate
from tcm_core.metrics import calibration_range, distance_histograms, eps_opis, recall_at_k, utility_curves

X, Y = clustered(0, n=60, classes=4)


@pytest.mark.parametrize("x,y,match", [
    (np.zeros((0, 4)), np.zeros(0, int), "empty"),
    (np.full((6, 2), np.nan), np.array([0, 0, 0, 1, 1, 1]), "NaN or Inf"),
    (np.array([[1.0, np.inf], [0, 1]] * 3), np.array([0, 0, 0, 1, 1, 1]), "NaN or Inf"),
    (np.ones(6), np.array([0, 0, 0, 1, 1, 1]), r"shape \(n, d\)"),
    (np.ones((6, 2, 2)), np.array([0, 0, 0, 1, 1, 1]), r"shape \(n, d\)"),
    (X, Y[:-1], "must match"),
    (X, Y.reshape(-1, 2), r"shape \(n,\)"),
    (X, np.where(Y == 0, 0.5, Y).astype(float), "integers or strings"),
    (np.array([[0.0, 0.0], [1, 0], [0, 1], [1, 1]]), np.array([0, 0, 1, 1]), "zero-norm"),
    (X, np.zeros(len(Y), int), "at least 2 classes"),
    (X, np.arange(len(Y)), "at least 2 classes"),
    (np.array([["a", "b"]] * 4), np.array([0, 0, 1, 1]), "numeric"),
])
def test_bad_arrays(x, y, match):
    with pytest.raises(TCMError, match=match):
        utility_curves(x, y)


@pytest.mark.parametrize("kwargs,match", [
    (dict(far_range=(0.2, 0.1)), "far_range"),
    (dict(far_range=(-0.1, 0.1)), "far_range"),
    (dict(far_range=(0.1, 1.5)), "far_range"),
    (dict(far_range=(0.1,)), "two numbers"),
    (dict(distance_range=(1.2, 0.4)), "distance_range"),
    (dict(distance_range=(0.2, 2.5)), "distance_range"),
    (dict(distance_range=(np.nan, 1.0)), "finite"),
    (dict(num_thresholds=1), "num_thresholds"),
    (dict(num_thresholds=2.5), "num_thresholds"),
    (dict(beta=0), "beta"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(TCMError, match=match):
        utility_curves(X, Y, **kwargs)


@pytest.mark.parametrize("eps", [0, 1, -0.1, 1.5])
def test_bad_eps(eps):
    with pytest.raises(TCMError, match="eps"):
        eps_opis(utility_curves(X, Y), eps)
    with pytest.raises(TCMError, match="eps"):
        EvalSettings(eps=eps)


def test_eps_that_leaves_no_rest():
    c = utility_curves(X, Y)  # 4 classes: eps = 0.8 puts all 4 among the worst
    with pytest.raises(TCMError, match="rest would be empty"):
        eps_opis(c, 0.8)


def test_other_entry_points_validate():
    with pytest.raises(TCMError, match="far_range"):
        calibration_range(X, Y, far_range=(0.5, 0.1))
    with pytest.raises(TCMError, match="ks"):
        recall_at_k(X, Y, ks=(0,))
    with pytest.raises(TCMError, match="zero-norm"):
        distance_histograms(np.zeros((4, 2)), [0, 0, 1, 1])
    with pytest.raises(TCMError, match="num_thresholds"):
        distance_histograms(X, Y).curves(num_thresholds=1)
    with pytest.raises(TCMError, match="unit-norm"):
        evaluate(X * 3, Y, EvalSettings(normalize=False))
