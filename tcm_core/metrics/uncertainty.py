"""How sure is an OPIS number, and a change of it? Intervals for OPIS, eps-OPIS and their change
from the baseline to the +TCM run (METHOD.md, "OPIS" and "epsilon-OPIS").

Two sources of noise, two intervals:

- **Over test classes** (``bootstrap_scores``, ``bootstrap_change``): a percentile bootstrap
  that resamples the *test classes* with replacement, never the pairs. The classes are the
  sample a user would draw again (another open-world test split), and OPIS is an average over
  classes, so they are the unit of resampling; pairs inside a class are not independent. Each
  resample recomputes OPIS and eps-OPIS from the per-class utility curves (no new distances).
  A change is bootstrapped **paired**: both runs are evaluated on the same test classes, so a
  resample draws class names once and uses the same counts in both runs (classes are matched
  by name; only those present in both count). That removes the class-to-class noise that both
  runs share, which is what makes a change trustworthy at all.
- **Across seeds** (``seed_interval``, ``summarize_changes``): repeats of the whole
  baseline/+TCM pair with different seeds. Seeds are few and the per-seed changes are roughly
  normal, so a Student-t interval of the mean; it is paired because callers pass per-seed
  *changes* (tcm minus base, per seed). With 3 seeds the t quantile is 4.30 and the interval is
  wide: that is honest, not a bug. One seed gives no interval (NaN bounds), never a crash.

The bootstrap is vectorized so it can follow a slider: draws are
``numpy.random.default_rng(seed).integers(0, T, size=(resamples, T))`` (class indices; their
per-row counts ``C (B, T)`` are multinomial, drawn once per seed and class count), and every
resample's statistics come from one matrix product ``C @ U`` with the class-utility matrix
``U (T, k)`` plus small ones:

- OPIS_b = C @ mean_k(U**2) / T - mean_k((C @ U / T)**2), the across-class variance per
  threshold averaged over the thresholds;
- eps-OPIS_b: each class's mean utility is fixed, so classes are sorted once by it (stable, as
  ``opis.worst_classes``); the worst ceil(eps*T) of a resample are the first classes in that
  order taken with their counts (cumulative counts clipped at ceil(eps*T); only the first
  classes in that order can be reached), the rest the others, whose utility sum is the
  resample's total (C @ U) minus the worst's.

Intervals are percentile intervals (95% by default) and ``Interval.value`` is always the
point estimate on the original classes, computed with ``opis.opis``/``opis.eps_opis``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from tcm_core.checks import check_eps
from tcm_core.errors import TCMError
from tcm_core.metrics.change import points_change, relative_change
from tcm_core.metrics.opis import eps_opis, opis, worst_classes
from tcm_core.metrics.retrieval import ClassHits
from tcm_core.metrics.utility import DEFAULT_EPS, UtilityCurves

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
_BLOCK_ELEMENTS = 1 << 22  # resamples are processed in blocks of at most ~4M counts (32 MB float64)


@dataclasses.dataclass(frozen=True)
class Interval:
    """A point estimate with a ``level`` interval ``[low, high]``.

    ``value`` is the estimate on the original data (not the bootstrap mean), ``n`` the number of
    classes or seeds it rests on, ``method`` how the interval was made, in words. Bounds are NaN
    where no interval exists (one seed, a change from 0).
    """

    value: float
    low: float
    high: float
    level: float
    n: int
    method: str

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (for a change: a real one)."""
        return bool(self.low > 0 or self.high < 0)  # False for NaN bounds

    def as_dict(self) -> dict:
        """Plain JSON-able dict; NaN written as None."""
        return {"value": _json_float(self.value), "low": _json_float(self.low),
                "high": _json_float(self.high), "level": float(self.level), "n": int(self.n),
                "method": self.method}


# ------------------------------------------------------------------ bootstrap over classes

def _check_level(level) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise TCMError(f"level must be strictly between 0 and 1 (e.g. 0.95); got {level!r}")
    return level


def _check_resamples(resamples) -> int:
    if isinstance(resamples, bool) or int(resamples) != resamples or int(resamples) < 2:
        raise TCMError(f"resamples must be an integer >= 2 (e.g. 1000); got {resamples!r}")
    return int(resamples)


def _n_worst(n_classes: int, eps: float) -> int:
    """ceil(eps*T) as ``opis.worst_classes`` counts it (and its errors)."""
    return max(1, math.ceil(eps * n_classes - 1e-12))


def draw_counts(n_classes: int, resamples: int = DEFAULT_RESAMPLES, seed=0) -> np.ndarray:
    """``(resamples, n_classes)`` int64: how often each class is drawn in each resample.

    Row b counts ``default_rng(seed).integers(0, n_classes, size=(resamples, n_classes))[b]``;
    ``seed`` may be an int or a ``numpy.random.Generator``.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_classes, size=(resamples, n_classes))
    idx += n_classes * np.arange(resamples)[:, None]
    return np.bincount(idx.ravel(), minlength=resamples * n_classes).reshape(resamples, n_classes)


def _draws(n_classes: int, resamples: int, seed) -> np.ndarray:
    """``draw_counts`` as float64, drawn once per (classes, resamples, int seed): every slider
    move of a page redraws the same resamples."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return _cached_draws(int(n_classes), int(resamples), int(seed))
    return draw_counts(n_classes, resamples, seed).astype(np.float64)


@functools.lru_cache(maxsize=8)
def _cached_draws(n_classes: int, resamples: int, seed: int) -> np.ndarray:
    out = draw_counts(n_classes, resamples, seed).astype(np.float64)
    out.flags.writeable = False
    return out


def replicates_from_counts(utility: np.ndarray, counts: np.ndarray,
                           eps: float = DEFAULT_EPS) -> tuple[np.ndarray, np.ndarray]:
    """OPIS and eps-OPIS ``(B,)`` of each resample; ``counts (B, T)`` from ``draw_counts``, each
    row summing to T, ``utility (T, k)`` the per-class curves. Equals ``opis``/``eps_opis`` on
    the utility rows repeated by their counts (in class order)."""
    u = np.asarray(utility, dtype=np.float64)
    t = u.shape[0]
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != t:
        raise TCMError(f"counts must have shape (B, {t}); got {counts.shape}")
    n_worst = _n_worst(t, eps)
    if n_worst >= t:
        raise TCMError(f"eps={eps:g} puts all {t} classes among the worst; the rest would be empty")
    return _replicates(u, counts.astype(np.float64, copy=False), n_worst)


def _replicates(u: np.ndarray, counts: np.ndarray, n_worst: int) -> tuple[np.ndarray, np.ndarray]:
    if counts.size * u.shape[1] > SMALL_PRODUCT:
        return _replicates_blocks(u, counts, n_worst)
    with _blas_threads().limit(limits=1, user_api="blas"):
        return _replicates_blocks(u, counts, n_worst)


SMALL_PRODUCT = 1 << 25  # multiply-adds below which one BLAS thread answers sooner (no hand-off)


@functools.lru_cache(maxsize=1)
def _blas_threads():
    from threadpoolctl import ThreadpoolController  # scikit-learn's dependency; after numpy's BLAS loaded

    return ThreadpoolController()


def _replicates_blocks(u: np.ndarray, counts: np.ndarray, n_worst: int) -> tuple[np.ndarray, np.ndarray]:
    t, k = u.shape
    order = np.argsort(u.mean(axis=1), kind="stable")  # fixed: a class's mean utility never changes
    # Centering columns changes neither statistic (a variance; weights of the gap sum to 0) and
    # keeps m2 - mean^2 free of cancellation. OPIS only needs each class's mean square over k.
    uc = u - u.mean(axis=0)
    square = (uc * uc).mean(axis=1)  # (T,)
    out_opis = np.empty(counts.shape[0])
    out_eps = np.empty(counts.shape[0])
    block = max(1, _BLOCK_ELEMENTS // max(t, 1))
    for start in range(0, counts.shape[0], block):
        c = counts[start:start + block]
        total = c @ uc  # (b, k): each resample's utility sum per threshold, T times its mean
        out_opis[start:start + block] = c @ square / t - np.einsum("bk,bk->b", total, total) / (k * t * t)
        worst, rows = _worst_draws(c, order, n_worst)
        gap = worst @ uc[rows]  # the worst's sum; the gap is their mean minus the rest's
        gap *= 1.0 / n_worst + 1.0 / (t - n_worst)
        gap -= total * (1.0 / (t - n_worst))
        out_eps[start:start + block] = np.einsum("bk,bk->b", gap, gap) / k
    return out_opis, out_eps


def _worst_draws(c: np.ndarray, order: np.ndarray, n_worst: int) -> tuple[np.ndarray, np.ndarray]:
    """``(weights (b, h), rows (h,))``: each resample's draws of the classes in ``order`` (worst
    mean utility first) taken until ``n_worst`` draws; only the first h classes can be reached."""
    t = order.size
    # a class is drawn about once per resample, so n_worst draws need about n_worst classes:
    # 6 standard deviations more reach them in every row but about one in 10^9; else widen
    h = min(t, n_worst + math.ceil(6 * math.sqrt(n_worst)) + 8)
    while True:
        drawn = c[:, order[:h]]
        before = np.cumsum(drawn, axis=1) - drawn  # draws of the classes ranked worse than this one
        if h == t or (before[:, -1] + drawn[:, -1] >= n_worst).all():
            return np.minimum(np.maximum(n_worst - before, 0.0), drawn), order[:h]
        h = min(t, 2 * h)


def _percentiles(reps: np.ndarray, level: float) -> tuple[float, float]:
    finite = reps[np.isfinite(reps)]
    if finite.size == 0:
        return math.nan, math.nan
    a = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(finite, [a, 100.0 - a])
    return float(lo), float(hi)


def bootstrap_scores(curves: UtilityCurves, eps: float = DEFAULT_EPS, *,
                     resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL,
                     seed=0) -> tuple[Interval, Interval]:
    """``(OPIS, eps-OPIS)`` intervals by a percentile bootstrap over the test classes.

    ``value`` is ``opis(curves)`` / ``eps_opis(curves, eps)`` on the original classes; the same
    ``seed`` gives the same interval.
    """
    eps, level, resamples = check_eps(eps), _check_level(level), _check_resamples(resamples)
    value_opis, value_eps = opis(curves), eps_opis(curves, eps)  # also the checks (T >= 2 etc.)
    t = curves.utility.shape[0]
    reps_opis, reps_eps = replicates_from_counts(curves.utility, _draws(t, resamples, seed), eps)
    method = f"bootstrap over {t} classes, {resamples} resamples"
    return (Interval(value_opis, *_percentiles(reps_opis, level), level, t, method),
            Interval(value_eps, *_percentiles(reps_eps, level), level, t, method))


def _relative_changes(base: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Vectorized ``change.relative_change``: 0 where equal, NaN from a base of 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 * (new - base) / np.abs(base)
    out[base == 0] = math.nan
    out[new == base] = 0.0
    return out


def _shared_classes(base: UtilityCurves, tcm: UtilityCurves) -> tuple[np.ndarray, np.ndarray]:
    """Row indices into ``base`` and ``tcm`` of the classes both have, in ``base``'s order."""
    if base.classes.shape == tcm.classes.shape and np.array_equal(base.classes, tcm.classes):
        rows = np.arange(base.classes.size, dtype=np.intp)  # the usual pair: one test split
        if rows.size >= 2:
            return rows, rows
    where = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(tcm.classes)}
    bi, ti = [], []
    for i, c in enumerate(base.classes):
        j = where.get(c.item() if hasattr(c, "item") else c)
        if j is not None:
            bi.append(i)
            ti.append(j)
    if len(bi) < 2:
        raise TCMError(f"the baseline and +TCM runs share {len(bi)} test class(es) by name; a paired "
                       "comparison needs at least 2 (were both evaluated on the same test split?)")
    return np.asarray(bi, dtype=np.intp), np.asarray(ti, dtype=np.intp)


def _subset(curves: UtilityCurves, rows: np.ndarray) -> UtilityCurves:
    if rows.size == curves.utility.shape[0] and np.array_equal(rows, np.arange(rows.size)):
        return curves
    return dataclasses.replace(curves, classes=curves.classes[rows], class_sizes=curves.class_sizes[rows],
                               utility=curves.utility[rows], tpr=curves.tpr[rows], tnr=curves.tnr[rows])


def bootstrap_change(base_curves: UtilityCurves, tcm_curves: UtilityCurves, eps: float = DEFAULT_EPS, *,
                     resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL,
                     seed=0) -> tuple[Interval, Interval]:
    """``(OPIS change %, eps-OPIS change %)`` intervals, ``100 * (tcm - base) / base``, by a
    paired bootstrap over the test classes both runs share (matched by name): each resample uses
    the same class counts in both runs. ``value`` is the change on the shared classes; NaN (and
    NaN bounds) where the baseline score is 0. Resamples whose baseline is 0 are left out.
    """
    eps, level, resamples = check_eps(eps), _check_level(level), _check_resamples(resamples)
    bi, ti = _shared_classes(base_curves, tcm_curves)
    base, tcm = _subset(base_curves, bi), _subset(tcm_curves, ti)
    t = bi.size
    worst_classes(base, eps)  # eps must leave a rest
    values = (relative_change(opis(base), opis(tcm)),
              relative_change(eps_opis(base, eps), eps_opis(tcm, eps)))
    counts = _draws(t, resamples, seed)
    b_opis, b_eps = replicates_from_counts(base.utility, counts, eps)
    n_opis, n_eps = replicates_from_counts(tcm.utility, counts, eps)
    left_out = base_curves.utility.shape[0] + tcm_curves.utility.shape[0] - 2 * t
    method = f"paired bootstrap over {t} shared classes, {resamples} resamples"
    if left_out:
        method += f" ({left_out} class(es) not in both runs left out)"
    out = []
    for value, reps in zip(values, (_relative_changes(b_opis, n_opis), _relative_changes(b_eps, n_eps))):
        lo, hi = _percentiles(reps, level) if math.isfinite(value) else (math.nan, math.nan)
        undefined = int((~np.isfinite(reps)).sum())
        note = f"; {undefined} resample(s) with a baseline of 0 left out" if undefined and math.isfinite(value) else ""
        out.append(Interval(value, lo, hi, level, t, method + note))
    return out[0], out[1]


# ------------------------------------------------------------------ across seeds

def seed_interval(values: Sequence[float], level: float = DEFAULT_LEVEL) -> Interval:
    """Mean of per-seed values with a Student-t interval (``n - 1`` degrees of freedom).

    Pass per-seed *changes* (tcm minus base, per seed) for a paired interval. Missing or
    non-finite values are left out; with one value left the bounds are NaN, with none the mean
    is NaN too.
    """
    level = _check_level(level)
    arr = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64).reshape(-1)
    finite = arr[np.isfinite(arr)]
    n = int(finite.size)
    dropped = int(arr.size - n)
    note = f" ({dropped} undefined value(s) left out)" if dropped else ""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, level, 0, "t over 0 seeds: no value" + note)
    mean = float(finite.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, level, 1,
                        "t over 1 seed: no interval from a single seed" + note)
    from scipy import stats  # imported here: it costs the CLI a second at start-up

    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1) * finite.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, level, n, f"t over {n} seeds" + note)


def _json_float(x) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


SEED_CHANGES = {"opis_change_pct": ("opis", relative_change),
                "eps_opis_change_pct": ("eps_opis", relative_change),
                "recall_at_1_change_pts": ("recall_at_1", points_change)}


def seed_change_intervals(per_seed: Sequence[Mapping], level: float = DEFAULT_LEVEL) -> dict[str, Interval]:
    """Per-seed changes from baseline to +TCM as ``seed_interval``s, keyed as ``SEED_CHANGES``:
    relative change in % for the inconsistency scores, points (``100 * (tcm - base)``) for R@1.

    ``per_seed``: one dict per seed, ``{"baseline": {"opis", "eps_opis", "recall_at_1"},
    "tcm": {...}}`` (``summary.json``'s ``per_seed`` rows).
    """
    return {key: seed_interval([change(_metric(s, "baseline", metric), _metric(s, "tcm", metric))
                                for s in per_seed], level)
            for key, (metric, change) in SEED_CHANGES.items()}


def summarize_changes(per_seed: Sequence[Mapping], level: float = DEFAULT_LEVEL) -> dict:
    """``seed_change_intervals`` as plain JSON: each ``{"mean", "ci_low", "ci_high", "n"}``
    (None for NaN), what ``summary.json`` stores."""
    return {key: {"mean": _json_float(iv.value), "ci_low": _json_float(iv.low),
                  "ci_high": _json_float(iv.high), "n": int(iv.n)}
            for key, iv in seed_change_intervals(per_seed, level).items()}


def _metric(seed_result: Mapping, run: str, metric: str) -> float | None:
    value = (seed_result.get(run) or {}).get(metric)
    return None if value is None else float(value)


# ------------------------------------------------------------------ R@1 over classes

def bootstrap_recall_change(base: ClassHits, tcm: ClassHits, *, resamples: int = DEFAULT_RESAMPLES,
                            level: float = DEFAULT_LEVEL, seed=0) -> Interval:
    """Paired bootstrap over the shared test classes of the R@1 change in points,
    ``100 * (R@1 tcm - R@1 base)``; R@1 of a resample weighs each drawn class by its queries."""
    level, resamples = _check_level(level), _check_resamples(resamples)
    shared, ib, it = np.intersect1d(base.classes, tcm.classes, return_indices=True)
    if len(shared) < 2:
        raise TCMError(f"the two runs share {len(shared)} test class(es); a paired bootstrap needs at least 2")
    hb, ht, size = base.hits[ib], tcm.hits[it], base.sizes[ib]
    value = 100.0 * (ht.sum() - hb.sum()) / size.sum()
    counts = _draws(len(shared), resamples, seed)
    reps = 100.0 * (counts @ (ht - hb)) / (counts @ size)
    low, high = _percentiles(reps, level)
    return Interval(float(value), low, high, level, len(shared),
                    f"paired bootstrap over {len(shared)} classes, {resamples} resamples")
