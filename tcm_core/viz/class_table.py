"""Per-class table for comparing two runs: mean utility over the calibration grid and the
false-accept / false-reject rates at one chosen threshold (``metrics.rates``). Plain floats;
the page formats them.
"""

from __future__ import annotations

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
