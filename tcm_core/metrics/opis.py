"""OPIS and epsilon-OPIS: how much per-class utility disagrees across the calibration range
(METHOD.md, "OPIS" and "epsilon-OPIS"). Lower is better for both."""

from __future__ import annotations

import math

import numpy as np

from tcm_core.checks import check_eps
from tcm_core.errors import TCMError
from tcm_core.metrics.utility import DEFAULT_EPS, UtilityCurves


def opis(curves: UtilityCurves) -> float:
    """Across-class variance of utility, averaged over the threshold grid."""
    u = curves.utility  # (T, k)
    return float(((u - u.mean(axis=0)) ** 2).mean())


def worst_classes(curves: UtilityCurves, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Indices (into ``curves.classes``) of the ceil(eps*T) classes with the lowest mean utility."""
    eps = check_eps(eps)
    t = curves.utility.shape[0]
    n_worst = max(1, math.ceil(eps * t - 1e-12))  # guard against 0.3*10 = 3.0000000000000004
    if n_worst >= t:
        raise TCMError(f"eps={eps:g} puts all {t} classes among the worst; the rest would be empty")
    order = np.argsort(curves.utility.mean(axis=1), kind="stable")
    return order[:n_worst]


def eps_opis(curves: UtilityCurves, eps: float = DEFAULT_EPS) -> float:
    """Mean squared gap between the worst eps of classes and the rest, over the grid."""
    worst = worst_classes(curves, eps)
    rest = np.ones(curves.utility.shape[0], dtype=bool)
    rest[worst] = False
    gap = curves.utility[worst].mean(axis=0) - curves.utility[rest].mean(axis=0)
    return float((gap**2).mean())
