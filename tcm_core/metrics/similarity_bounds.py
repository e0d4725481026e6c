"""Distance decisions as float32 similarity comparisons, exactly.

The pair distance of a float32 cosine similarity s is the float64 ``sqrt(max(2 - 2 s, 0))``
(METHOD.md, "Conventions"; ``_kernels.pair_distance``). Every step of it is correctly rounded,
so it is monotone (non-increasing) in s: "d(s) <= D" holds exactly for the float32 s at or
above one float32 cut point, and a histogram bin of d(s) is a count of cut points. Finding
those cut points once (bisection over the float32 values, on the host) lets the device path
decide most pairs on their float32 similarity, bit for bit as the float64 kernels would.
"""

from __future__ import annotations

import functools

import numpy as np

from tcm_core.metrics._kernels import REFINE_SIMILARITY

_LOWEST, _HIGHEST = -4.0, 4.0  # beyond any float32 cosine similarity of unit vectors


def distance_of_similarity(s) -> np.ndarray:
    """``_kernels.pair_distance`` of float32 similarities, without the refinement."""
    s64 = np.asarray(s, dtype=np.float32).astype(np.float64)
    return np.sqrt(np.maximum(2.0 - 2.0 * s64, 0.0))


def _key(x) -> np.ndarray:
    """Order-preserving int64 key of float32 values (-0.0 and +0.0 share key 0)."""
    bits = np.asarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits >= 0, bits, -(bits & 0x7FFFFFFF))


def _value(key: np.ndarray) -> np.ndarray:
    bits = np.where(key >= 0, key, (-key) | 0x80000000).astype(np.uint32)
    return bits.view(np.float32)


def _smallest_where(pred, size: int) -> np.ndarray:
    """Per target, the smallest float32 s in [-4, 4] with ``pred(s)`` true; ``pred`` must be
    false at -4, true at 4 and monotone in s."""
    lo = np.full(size, _key(np.float32(_LOWEST)), dtype=np.int64)
    hi = np.full(size, _key(np.float32(_HIGHEST)), dtype=np.int64)
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        ok = pred(_value(mid))
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    return hi


def smallest_similarity_within(distances) -> np.ndarray:
    """``(k,)`` float32: the smallest s with ``d(s) <= D`` for each distance D (>= 0), so that
    ``d(s) <= D`` exactly when ``s >= result``."""
    dist = np.atleast_1d(np.asarray(distances, dtype=np.float64))
    return _value(_smallest_where(lambda s: distance_of_similarity(s) <= dist, dist.size))


@functools.lru_cache(maxsize=4)
def bin_bounds(nbins: int) -> np.ndarray:
    """``(nbins - 1,)`` ascending float32 cut points for the device path's distance bins
    (``device_pairs._distance_bins``): ``bin(d(s)) == nbins - 1 - #{bounds < s}``.

    The bin is ``floor(d * nbins / 2)`` (a power-of-two scaling, exact), so the bin is
    at least j exactly when ``d >= 2 j / nbins``: when s is at most the largest float32 below
    the smallest s with ``d(s) < 2 j / nbins``.
    """
    edges = 2.0 * np.arange(1, nbins, dtype=np.float64) / nbins  # bin j starts at edges[j - 1]
    first_below = _smallest_where(lambda s: distance_of_similarity(s) < edges, edges.size)
    bounds = _value(first_below - 1)[::-1].copy()
    bounds.flags.writeable = False  # cached: shared by every caller
    return bounds


def refine_similarity() -> float:
    """The smallest float32 s with ``s >= REFINE_SIMILARITY`` in float64 (the kernels' test)."""
    s = np.float32(REFINE_SIMILARITY)
    while np.float64(s) < REFINE_SIMILARITY:
        s = np.nextafter(s, np.float32(np.inf))
    while np.float64(np.nextafter(s, np.float32(-np.inf))) >= REFINE_SIMILARITY:
        s = np.nextafter(s, np.float32(-np.inf))
    return float(s)
