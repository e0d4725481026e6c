"""Per-class false-accept and false-reject rates at one global threshold (METHOD.md,
"Per-class utility curve").

FAR_c(t) = 1 - TNR_c(t), the share of class c's negative pairs (exactly one item in c) with
d <= t; FRR_c(t) = 1 - TPR_c(t), the share of its positive pairs with d > t. Both come from the
cumulative counts of ``DistanceHistograms``, linearly interpolated at t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tcm_core.checks import check_threshold
from tcm_core.metrics.histograms import DistanceHistograms, interp_rows


def class_rates(hist: DistanceHistograms, threshold: float) -> pd.DataFrame:
    """Index ``class`` (usable classes, >= 2 samples); columns ``size``, ``FAR``, ``FRR`` at
    ``threshold`` (a distance in [0, 2])."""
    t = check_threshold(threshold)
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
