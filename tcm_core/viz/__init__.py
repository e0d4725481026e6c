"""Result objects -> plotly figures and small tables for the app (never imports Streamlit).

- ``utility``: per-class utility curves, Ū(d), worst-ε classes, calibration range, OPIS.
- ``history``: per-epoch metrics of training runs.
- ``class_table``: per-class mean utility and FAR/FRR at a threshold, baseline vs TCM.
- ``summary``: relative OPIS change and number formats.
"""

from tcm_core.viz.class_table import class_rates, class_table
from tcm_core.viz.history import history_figure
from tcm_core.viz.summary import format_metric, opis_change
from tcm_core.viz.utility import utility_figure, utility_pair_figure

__all__ = [
    "class_rates", "class_table", "format_metric", "history_figure", "opis_change",
    "utility_figure", "utility_pair_figure",
]
