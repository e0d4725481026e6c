"""Colors, the figure template and small layout helpers shared by the figures in ``viz``."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, qualitative

BASELINE_COLOR = "#1f77b4"  # blue
TCM_COLOR = "#ff7f0e"  # orange
WORST_COLOR = "#d62728"  # red
MEAN_COLOR = "#111111"
RANGE_FILL = "#7f7f7f"
OTHER_COLORS = qualitative.Plotly[2:] + qualitative.Plotly[:2]

BASELINE_LABEL, TCM_LABEL = "baseline", "+TCM"  # the one way the two runs of a pair are named
PAIR_TITLES = ("Baseline", TCM_LABEL)
RUN_COLORS = {"baseline": BASELINE_COLOR, "tcm": TCM_COLOR, "+tcm": TCM_COLOR}


def run_colors(names) -> dict[str, str]:
    """Blue for a run named baseline, orange for tcm / +TCM, plotly defaults for the others."""
    colors, others = {}, 0
    for name in names:
        key = str(name).strip().lower().replace(" ", "")
        if key in RUN_COLORS:
            colors[name] = RUN_COLORS[key]
        else:
            colors[name] = OTHER_COLORS[others % len(OTHER_COLORS)]
            others += 1
    return colors


def rgba(color: str, alpha: float) -> str:
    """``'#1f77b4'`` -> ``'rgba(31,119,180,0.3)'``; non-hex colors are passed through."""
    if not (isinstance(color, str) and color.startswith("#") and len(color) == 7):
        return color
    r, g, b = hex_to_rgb(color)
    return f"rgba({r},{g},{b},{alpha:.3g})"


# what the figures used of plotly's default template; the whole one is deep-copied per figure
FIGURE_TEMPLATE = dict(layout=dict(font=dict(color="#2a3f5f"), hovermode="closest", hoverlabel=dict(align="left"),
                            title=dict(x=0.05), xaxis=dict(automargin=True, title=dict(standoff=15)),
                            yaxis=dict(automargin=True, title=dict(standoff=15))))


def dict_figure(traces: list[dict], layout: dict) -> go.Figure:
    """A ``go.Figure`` from plain dicts without plotly's per-property validation (which took
    most of a slider move); the dicts are built here, so they are known to be valid."""
    return go.Figure(dict(data=traces, layout=layout), _validate=False)
