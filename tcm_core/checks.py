"""The one module of input checks (scikit-learn's ``utils/validation`` in spirit).

Every boundary (the CLI, the app, a library call) checks embeddings, labels, ranges and
settings here, so a NaN or an inverted range reads the same everywhere and names the input.
Each check returns the cleaned value or raises ``TCMError`` saying what was expected, what
came and what to do.
"""

from __future__ import annotations

import math

import numpy as np

from tcm_core.errors import TCMError


def as_array(x, name: str) -> np.ndarray:
    """``x`` (a numpy array, a torch tensor or a nested list) as a numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TCMError(f"{name} could not be read as an array: {exc}") from None


def check_embeddings(embeddings, *, normalize: bool = True, name: str = "embeddings",
                     dims: tuple[int, ...] | None = None, min_rows: int = 1) -> np.ndarray:
    """``embeddings (n, d)`` as finite float64 with no zero-norm row, or ``TCMError``.

    ``dims``: the allowed dimensions d (None: any); ``min_rows``: the fewest rows accepted.
    With ``normalize=False`` the rows must already be unit vectors.
    """
    arr = as_array(embeddings, name)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TCMError(f"{name} must be a numeric array; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise TCMError(f"{name} must have shape (n, d); got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise TCMError(f"{name} are empty (shape {arr.shape}); need at least {max(2, min_rows)} "
                       "samples of dimension >= 1")
    if dims is not None and arr.shape[1] not in dims:
        raise TCMError(f"{name} must have dimension {' or '.join(map(str, dims))}; got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise TCMError(f"{name} need at least {min_rows} rows; got {arr.shape[0]}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr).all(axis=1)).sum())
        raise TCMError(f"{name} contain NaN or Inf in {bad} row(s); remove or fix those rows")
    norms = np.linalg.norm(arr, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise TCMError(f"{name} have {zero.size} zero-norm row(s) (first: row {zero[0]}); "
                       "they cannot be L2-normalized: remove them")
    if not normalize and np.abs(norms - 1.0).max() > 1e-3:
        raise TCMError(f"normalize=False needs unit-norm {name} (distances assume them), but row "
                       f"norms range from {norms.min():.4g} to {norms.max():.4g}; keep normalize=True")
    return arr


def unit_rows(embeddings, **kwargs) -> np.ndarray:
    """``check_embeddings``, then each row scaled to unit length."""
    arr = check_embeddings(embeddings, **kwargs)
    return arr / np.linalg.norm(arr, axis=1, keepdims=True)


def check_labels(labels, n: int, *, name: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """``(codes (n,), classes)``: integer codes into the sorted unique class names."""
    arr = as_array(labels, name)
    if arr.ndim != 1:
        raise TCMError(f"{name} must have shape (n,); got shape {arr.shape}")
    if arr.shape[0] != n:
        raise TCMError(f"{name} have length {arr.shape[0]} but embeddings have {n} rows; they must match")
    if arr.dtype == object:
        raise TCMError(f"{name} must be integers or strings; got an object array")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or not np.all(arr == np.round(arr)):
            raise TCMError(f"{name} must be integers or strings; got non-integer floating-point values")
        arr = arr.astype(np.int64)
    elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype.kind in "USb"):
        raise TCMError(f"{name} must be integers or strings; got dtype {arr.dtype}")
    classes, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), classes


def check_points(points, labels, *, dims: tuple[int, ...] | None = None, min_rows: int = 1,
                 name: str = "points") -> tuple[np.ndarray, np.ndarray]:
    """``(unit rows (n, d), labels (n,))`` for drawing and densities: the checks of the metrics,
    with the labels kept as given (not coded)."""
    x = unit_rows(points, dims=dims, min_rows=min_rows, name=name)
    check_labels(labels, len(x))
    return x, as_array(labels, "labels")


def check_number(value, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, what: str = "a number") -> float:
    """``value`` as a finite float within ``[low, high]`` (``low_open``: strictly above ``low``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TCMError(f"{name} must be {what}; got {value!r}") from None
    below = low is not None and (v <= low if low_open else v < low)
    if not math.isfinite(v) or below or (high is not None and v > high):
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"<= {high:g}"
        bounds = " and ".join(b for b in (lo, hi) if b)
        raise TCMError(f"{name} must be {what}" + (f" {bounds}" if bounds else "") + f"; got {value!r}")
    return v


def check_range(value, name: str, low: float, high: float, what: str) -> tuple[float, float]:
    """Two finite numbers ``(lo, hi)`` with ``low <= lo < hi <= high``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TCMError(f"{name} must be two numbers (low, high); got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise TCMError(f"{name} must be finite; got ({lo}, {hi})")
    if not (low <= lo < hi <= high):
        raise TCMError(f"{name} must satisfy {low:g} <= low < high <= {high:g}{what}; got ({lo:g}, {hi:g})")
    return lo, hi


def check_far_range(far_range) -> tuple[float, float]:
    return check_range(far_range, "far_range", 0.0, 1.0, "")


def check_distance_range(distance_range) -> tuple[float, float]:
    return check_range(distance_range, "distance_range", 0.0, 2.0,
                       " (distances between unit vectors)")


def check_num_thresholds(num_thresholds) -> int:
    if isinstance(num_thresholds, bool) or int(num_thresholds) != num_thresholds or num_thresholds < 2:
        raise TCMError(f"num_thresholds must be an integer >= 2; got {num_thresholds!r}")
    return int(num_thresholds)


def check_beta(beta) -> float:
    return check_number(beta, "beta", low=0.0, low_open=True, what="a finite number")


def check_eps(eps) -> float:
    eps = float(eps)
    if not (0.0 < eps < 1.0):
        raise TCMError(f"eps must be strictly between 0 and 1; got {eps!r}")
    return eps


def check_margin(name: str, margin) -> float:
    """m+ or m-: a cosine similarity in [-1, 1]."""
    if not -1.0 <= float(margin) <= 1.0:
        raise TCMError(f"{name} is a cosine similarity and must lie in [-1, 1]; got {margin}")
    return float(margin)


def check_lambda(name: str, lam) -> float:
    """lambda+ or lambda-: a weight >= 0."""
    if not float(lam) >= 0.0:
        raise TCMError(f"{name} must be >= 0; got {lam}")
    return float(lam)


def check_threshold(threshold) -> float:
    """A global distance threshold in [0, 2]."""
    return check_number(threshold, "threshold", low=0.0, high=2.0, what="a distance in [0, 2]")
