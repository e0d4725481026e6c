"""What people look at: result objects -> plotly figures, the tables beside them and number
formats. No metric math here (that is ``metrics``) and never Streamlit.

- ``utility``: per-class utility curves, Ū(d), worst-ε classes, calibration range, OPIS.
- ``history``: per-epoch metrics of training runs.
- ``class_table``: per-class mean utility and FAR/FRR at a threshold, baseline vs +TCM.
- ``margins``: pair-similarity histograms with TCM's bands; the margin search's Pareto front and grid.
- ``sphere``: embeddings on the sphere and circle, and 2-D projections.
- ``studies``: the accuracy-vs-consistency figure of a study.
- ``format``: short number formats and the color of a change.
"""

from tcm_core.viz.class_table import class_table
from tcm_core.viz.format import change_color, format_metric
from tcm_core.viz.history import history_figure
from tcm_core.viz.utility import utility_figure, utility_pair_figure

__all__ = ["change_color", "class_table", "format_metric", "history_figure", "utility_figure",
           "utility_pair_figure"]
