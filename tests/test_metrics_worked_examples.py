"""METHOD.md's worked examples, to the digits it gives."""

import numpy as np
import pytest
import torch

from tcm_core.losses import TCMLoss
from tcm_core.metrics import (calibration_range, distance_histograms, eps_opis, opis, recall_at_k,
                              utility_curves, worst_classes)

TABLE = np.array([
    [0, 0, 0.9333, 0.8571, 0.8571],
    [0, 0, 0, 0, 0.6667],
    [1, 1, 0.9333, 0.8571, 0.8571],
])


def test_utility_table(six_points):
    x, y = six_points
    c = utility_curves(x, y, distance_range=(0.3, 1.5), num_thresholds=5)
    np.testing.assert_allclose(c.thresholds, [0.3, 0.6, 0.9, 1.2, 1.5])
    np.testing.assert_allclose(c.utility, TABLE, atol=5e-5)
    assert list(c.classes) == [0, 1, 2] and c.skipped_classes.size == 0


def test_opis_and_eps_opis(six_points):
    x, y = six_points
    c = utility_curves(x, y, distance_range=(0.3, 1.5), num_thresholds=5)
    assert opis(c) == pytest.approx(0.161870, abs=5e-7)
    assert eps_opis(c, 0.1) == pytest.approx(0.428417, abs=5e-7)
    assert list(worst_classes(c, 0.1)) == [1]


def test_recall_and_far_band(six_points):
    x, y = six_points
    assert recall_at_k(x, y, ks=(1,))[1] == 0.5
    lo, hi = calibration_range(x, y, far_range=(0.1, 0.5))
    assert lo == pytest.approx(0.860713, abs=1e-6)
    assert hi == pytest.approx(1.905618, abs=1e-6)


def test_histogram_path_reproduces_table(six_points):
    x, y = six_points
    c = distance_histograms(x, y).curves(distance_range=(0.3, 1.5), num_thresholds=5)
    np.testing.assert_allclose(c.utility, TABLE, atol=5e-5)


def test_tcm_worked_example():
    e = torch.tensor([[0, 1], [0.43, 0.9], [1, 0], [0.5, 0.5]])
    labels = torch.tensor([0, 0, 1, 1])
    # |(.43,.9)| = 0.99745. Positives: (0,1) s = 0.9/0.99745 = 0.90230 > m+ (not hard);
    # (2,3) s = 0.70711 <= 0.9 -> 0.9 - 0.70711 = 0.19289.
    # Negatives >= m- = 0.5: (0,3) 0.70711 and (1,3) 0.665/(0.99745*0.70711) = 0.94285;
    # (0,2) 0 and (1,2) 0.43110 are easy -> mean(0.20711, 0.44285) = 0.32498.
    loss = TCMLoss()
    assert loss(e, labels).item() == pytest.approx(0.517876, abs=1e-5)
    only_pos = TCMLoss(lambda_neg=0.0)(e, labels).item()
    only_neg = TCMLoss(lambda_pos=0.0)(e, labels).item()
    assert only_pos == pytest.approx(0.19289, abs=1e-5)
    assert only_neg == pytest.approx(0.32498, abs=1e-5)
