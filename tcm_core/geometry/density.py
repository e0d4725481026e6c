"""Von Mises–Fisher kernel densities on the unit circle (d = 2) and sphere (d = 3): what the
sphere page paints (METHOD.md, "The ArcFace toy": each class a direction, its density around it).

Densities are w.r.t. the uniform surface measure: they integrate to 1 over the circle (length
2π) or the sphere (area 4π). The vMF kernel with concentration κ around a unit vector μ is

    d = 2:  exp(κ cos θ) / (2π I0(κ))        = exp(κ (cos θ - 1)) / (2π i0e(κ))
    d = 3:  κ exp(κ cos θ) / (4π sinh κ)     = κ exp(κ (cos θ - 1)) / (2π (1 - exp(-2κ)))

where cos θ = μ·x; the right-hand forms never overflow (κ up to 1e4 and beyond).
"""

from __future__ import annotations

import numpy as np
from scipy.special import i0e, ive

from tcm_core.checks import check_labels, unit_rows
from tcm_core.errors import TCMError

KAPPA_RANGE = (0.5, 2000.0)  # what default_kappa returns is clipped to this
_CHUNK = 2_000_000  # points x evaluation sites per block (~8 MB of float32)


def _unit(x, name: str, dim: int | None = None) -> np.ndarray:
    return unit_rows(x, name=name, dims=(2, 3) if dim is None else (dim,))


def _log_const(kappa: float, dim: int) -> float:
    """log of the kernel's constant in the exp(κ (cos θ - 1)) form."""
    if dim == 2:
        return -np.log(2 * np.pi * i0e(kappa))
    # κ / (1 - e^{-2κ}) -> 1/2 as κ -> 0 (the uniform density 1/(4π))
    ratio = 0.5 if kappa < 1e-12 else kappa / -np.expm1(-2 * kappa)
    return np.log(ratio / (2 * np.pi))


def _check_kappa(kappa) -> float:
    if not (np.isscalar(kappa) and np.isfinite(kappa) and kappa >= 0):
        raise TCMError(f"kappa must be a finite number >= 0; got {kappa!r}")
    return float(kappa)


def vmf_kde(points, at, kappa: float) -> np.ndarray:
    """Kernel density of ``points (n, d)`` evaluated at ``at (m, d)`` -> ``(m,)``.

    Rows are scaled to unit length; d is 2 or 3; ``kappa`` (κ >= 0) is the kernel's
    concentration (larger: narrower, roughly an angular width 1/sqrt(κ) radians). Computed in
    float32 blocks of points, so 10,000 points on a 100x100 grid take well under a second;
    float32 cosines resolve angles down to about 1e-3 rad (ample for κ up to ~1e5).
    """
    points = _unit(points, "points")
    at = _unit(at, "at", points.shape[1])
    kappa = _check_kappa(kappa)
    if len(points) == 0:
        raise TCMError("points is empty: a density needs at least one point")
    p32, a32 = points.astype(np.float32), at.astype(np.float32)
    total = np.zeros(len(at), dtype=np.float64)
    step = max(1, _CHUNK // max(1, len(at)))
    for start in range(0, len(p32), step):
        block = a32 @ p32[start:start + step].T  # (m, chunk) cosines
        block -= 1.0
        block *= kappa
        np.exp(block, out=block)
        total += block.sum(axis=1, dtype=np.float64)
    return total * np.exp(_log_const(kappa, points.shape[1])) / len(points)


def class_centers(points, labels):
    """``(classes (c,), centers (c, d) unit vectors, mean resultant lengths (c,))``.

    A class's center is the direction of its mean vector; the mean resultant length R̄ (the
    mean vector's norm, in [0, 1]) is 1 for a class collapsed onto one direction and near 0 for
    one spread evenly. A class whose mean is the zero vector gets center NaN.
    """
    points, labels = _unit(points, "points"), np.asarray(labels)
    check_labels(labels, len(points))
    classes, inverse = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(classes), points.shape[1]))
    np.add.at(sums, inverse, points)
    means = sums / np.bincount(inverse, minlength=len(classes))[:, None]
    lengths = np.linalg.norm(means, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centers = means / lengths[:, None]
    return classes, centers, lengths


def class_densities(points, labels, at, kappa: float) -> dict:
    """Class -> its own kernel density ``(m,)`` at ``at`` (each integrates to 1)."""
    points, labels = _unit(points, "points"), np.asarray(labels)
    check_labels(labels, len(points))
    return {c: vmf_kde(points[labels == c], at, kappa) for c in np.unique(labels)}


def _fit_kappa(rbar: float, dim: int) -> float:
    """vMF concentration from the mean resultant length (Banerjee et al. 2005 approximation)."""
    rbar = min(max(rbar, 1e-6), 1 - 1e-9)
    return rbar * (dim - rbar ** 2) / (1 - rbar ** 2)


def _rule_of_thumb(k: float, n: int, dim: int) -> float:
    """Kernel κ minimizing the asymptotic MISE when the data are vMF(κ = k), n points.

    d = 2: Taylor (2008), κ_bw = [3 n k² I2(2k) / (4 √π I0(k)²)]^(2/5).
    d = 3: García-Portugués (2013), h⁶ = 8 sinh²k / (k n [(1 + 4k²) sinh 2k - 2k cosh 2k]),
    κ_bw = 1/h²; both written with exponentially scaled terms so large k never overflows
    (for large k the d = 3 rule tends to κ_bw = k n^(1/3)).
    """
    k = max(k, 0.05)
    if dim == 2:
        return float((3 * n * k ** 2 * ive(2, 2 * k) / (4 * np.sqrt(np.pi) * i0e(k) ** 2)) ** 0.4)
    e2, e4 = np.exp(-2 * k), np.exp(-4 * k)
    bracket = (1 + 4 * k ** 2) * (1 - e4) / 2 - k * (1 + e4)
    h6 = 2 * (1 - e2) ** 2 / (k * n * bracket)
    return float(h6 ** (-1 / 3))


def default_kappa(points, labels=None) -> float:
    """A rule-of-thumb kernel concentration for ``points (n, d)``, d = 2 or 3.

    Fits a vMF to the points (κ from the mean resultant length) and takes the bandwidth that
    would be MISE-optimal for such data (``_rule_of_thumb``): tighter clusters and more points
    give a larger κ. With ``labels`` the rule is applied per class (a class is one cluster;
    pooled classes look uniform) and the median over classes is returned, so every class is
    drawn with one kernel. Clipped to ``KAPPA_RANGE``.
    """
    points = _unit(points, "points")
    if len(points) < 2:
        raise TCMError("default_kappa needs at least two points")
    groups = [points] if labels is None else [points[np.asarray(labels) == c] for c in np.unique(labels)]
    rules = [_rule_of_thumb(_fit_kappa(np.linalg.norm(g.mean(axis=0)), g.shape[1]), len(g), g.shape[1])
             for g in groups if len(g) >= 2]
    if not rules:
        raise TCMError("default_kappa needs a class with at least two points")
    return float(np.clip(np.median(rules), *KAPPA_RANGE))
