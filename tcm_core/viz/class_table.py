"""Per-class table for comparing two runs: mean utility over the calibration grid and the
false-accept / false-reject rates at one chosen threshold (``metrics.rates``). Plain floats;
the page formats them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tcm_core.metrics import DistanceHistograms, UtilityCurves, class_rates
from tcm_core.viz._style import BASELINE_LABEL as BASE
from tcm_core.viz._style import TCM_LABEL as TCM


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
    classes = pd.Index(base_curves.classes, name="class")
    in_tcm = pd.Index(tcm_curves.classes).get_indexer(classes)
    in_rates = base_rates.index.get_indexer(classes)
    keep = (in_tcm >= 0) & (in_rates >= 0)  # usable in both runs, in the baseline's order
    base_u, tcm_u = base_curves.utility.mean(axis=1)[keep], tcm_curves.utility.mean(axis=1)[in_tcm[keep]]
    in_tcm_rates = tcm_rates.index.get_indexer(classes[keep])
    columns = {"size": base_rates["size"].to_numpy()[in_rates[keep]],
               f"mean U {BASE}": base_u, f"mean U {TCM}": tcm_u, "Δ mean U": tcm_u - base_u}
    for rate in ("FAR", "FRR"):
        columns[f"{rate} {BASE}"] = base_rates[rate].to_numpy()[in_rates[keep]]
        columns[f"{rate} {TCM}"] = np.where(in_tcm_rates >= 0, tcm_rates[rate].to_numpy()[in_tcm_rates], np.nan)
    return pd.DataFrame(columns, index=classes[keep])
