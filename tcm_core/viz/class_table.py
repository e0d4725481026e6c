"""Per-class table for comparing two runs: mean utility over the calibration grid and the
false-accept / false-reject rates at one chosen threshold (METHOD.md, "Per-class utility curve").

FAR_c(t) = 1 - TNR_c(t), the share of class c's negative pairs (exactly one item in c) with
d <= t; FRR_c(t) = 1 - TPR_c(t), the share of its positive pairs with d > t. Both come from the
cumulative counts of ``DistanceHistograms``, linearly interpolated at t. Plain floats; the page
formats them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tcm_core.errors import TCMError
from tcm_core.metrics import DistanceHistograms, UtilityCurves
from tcm_core.metrics.histograms import interp_rows

BASE, TCM = "baseline", "+TCM"


def class_rates(hist: DistanceHistograms, threshold: float) -> pd.DataFrame:
    """Index ``class`` (usable classes, >= 2 samples); columns ``size``, ``FAR``, ``FRR`` at
    ``threshold`` (a distance in [0, 2])."""
    t = _check_threshold(threshold)
    sizes = np.asarray(hist.class_sizes, dtype=np.float64)
    usable = sizes >= 2
    pos = interp_rows(np.array([t]), hist.grid, hist.pos_acc)[usable, 0]  # no copy of the grid
    neg = interp_rows(np.array([t]), hist.grid, hist.neg_acc)[usable, 0]
    s = sizes[usable]
    return pd.DataFrame(
        {"size": np.asarray(hist.class_sizes)[usable].astype(int),
         "FAR": neg / (s * (sizes.sum() - s)),
         "FRR": 1.0 - pos / (s * (s - 1) / 2)},
        index=pd.Index(np.asarray(hist.classes)[usable], name="class"))


def class_table(base_curves: UtilityCurves, tcm_curves: UtilityCurves,
                base_hist: DistanceHistograms, tcm_hist: DistanceHistograms,
                threshold: float) -> pd.DataFrame:
    """One row per class usable in both runs, in the baseline's class order.

    Columns: ``size``, ``mean U baseline``, ``mean U +TCM``, ``Δ mean U`` (TCM - baseline,
    positive = TCM better), then ``FAR``/``FRR`` ``baseline``/``+TCM`` at ``threshold``.
    Mean utility is over each run's own grid, as OPIS uses it.
    """
    base_rates = class_rates(base_hist, threshold)
    tcm_rates = class_rates(tcm_hist, threshold)
    table = pd.DataFrame({f"mean U {BASE}": _mean_utility(base_curves),
                          f"mean U {TCM}": _mean_utility(tcm_curves)}).dropna()
    table = table.join(base_rates[["size"]], how="inner")
    table["Δ mean U"] = table[f"mean U {TCM}"] - table[f"mean U {BASE}"]
    for rate in ("FAR", "FRR"):
        table[f"{rate} {BASE}"] = base_rates[rate]
        table[f"{rate} {TCM}"] = tcm_rates[rate]
    order = [c for c in base_curves.classes if c in table.index]
    return table.loc[order, ["size", f"mean U {BASE}", f"mean U {TCM}", "Δ mean U",
                             f"FAR {BASE}", f"FAR {TCM}", f"FRR {BASE}", f"FRR {TCM}"]]


def _mean_utility(curves: UtilityCurves) -> pd.Series:
    return pd.Series(curves.utility.mean(axis=1), index=pd.Index(curves.classes, name="class"))


def _check_threshold(threshold) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise TCMError(f"threshold must be a distance in [0, 2]; got {threshold!r}") from None
    if not (math.isfinite(t) and 0.0 <= t <= 2.0):
        raise TCMError(f"threshold must be a distance in [0, 2]; got {threshold!r}")
    return t
