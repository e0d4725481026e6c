"""Utility-curve figures: every class's U_c(d) over the calibration range, the mean Ū(d), the
worst-ε classes and the OPIS numbers (METHOD.md, "Per-class utility curve", "OPIS", "ε-OPIS").

All per-class curves go into ONE WebGL trace, separated by NaN gaps (plotly's "missing value",
``connectgaps=False``): thousands of traces would make plotly.js crawl, and a float32 array is
sent base64-encoded, where a list with ``None`` gaps takes seconds to build and serialise.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tcm_core.errors import TCMError
from tcm_core.metrics import UtilityCurves, eps_opis, opis, worst_classes
from tcm_core.viz._style import (BASELINE_COLOR, MEAN_COLOR, PAIR_TITLES, RANGE_FILL, TCM_COLOR, WORST_COLOR,
                                 rgba)

HOVER_CLASS_LIMIT = 500  # above this many classes the all-classes trace has no hover
Y_RANGE = (0.0, 1.02)
X_TITLE, Y_TITLE = "threshold distance d", "utility U(d)"


def utility_figure(curves: UtilityCurves, *, eps: float = 0.1, title: str = "",
                   color: str = BASELINE_COLOR,
                   x_range: Sequence[float] | None = None) -> go.Figure:
    """Per-class utility curves of one run over its calibration range (shaded), with Ū(d),
    the worst ``eps`` of classes in red and OPIS / ε-OPIS in the corner."""
    fig = make_subplots(rows=1, cols=1)
    _add_panel(fig, curves, eps=eps, color=color, row=1, col=1)
    _style_axes(fig, x_range if x_range is not None else padded_range([curves]))
    fig.update_layout(title=title or None, height=440)
    return fig


def utility_pair_figure(baseline: UtilityCurves, tcm: UtilityCurves, *, eps: float = 0.1,
                        titles: Sequence[str] = PAIR_TITLES,
                        colors: Sequence[str] = (BASELINE_COLOR, TCM_COLOR)) -> go.Figure:
    """Baseline and TCM side by side on the same axes (x covers both calibration ranges)."""
    if len(titles) != 2 or len(colors) != 2:
        raise TCMError(f"titles and colors need two entries each; got {titles!r}, {colors!r}")
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=list(titles),
                        horizontal_spacing=0.05)
    for col, (curves, label, color) in enumerate(zip((baseline, tcm), titles, colors), start=1):
        _add_panel(fig, curves, eps=eps, color=color, row=1, col=col, label=label,
                   first=col == 1)
    _style_axes(fig, padded_range([baseline, tcm]))
    fig.layout.xaxis2.matches = "x"
    fig.update_yaxes(title_text=None, row=1, col=2)
    fig.update_layout(height=460)
    return fig


def padded_range(curves_list: Sequence[UtilityCurves], pad: float = 0.04) -> tuple[float, float]:
    """x range covering every calibration range, padded so the shaded edges stay visible."""
    lo = min(c.t_min for c in curves_list)
    hi = max(c.t_max for c in curves_list)
    width = hi - lo
    return max(0.0, lo - pad * width), hi + pad * width


def gapped(rows: np.ndarray) -> np.ndarray:
    """``rows (T, k)`` -> one float32 line ``(T*k + T-1,)`` with a NaN between rows."""
    t, k = rows.shape
    out = np.full((t, k + 1), np.nan, dtype=np.float32)
    out[:, :k] = rows
    return out.ravel()[:-1]


def _add_panel(fig, curves: UtilityCurves, *, eps, color, row, col, label="", first=True):
    worst = worst_classes(curves, eps)  # raises TCMError for an eps that leaves no "rest"
    names = curves.classes.astype(str)
    for trace in (_all_classes_trace(curves, names, color, label),
                  _worst_trace(curves, worst, names, eps, first),
                  _mean_trace(curves, first)):
        fig.add_trace(trace, row=row, col=col)
    _add_range(fig, curves, row, col)
    _add_scores(fig, curves, eps, len(worst), row, col)


MAX_CLOUD_POINTS = 40_000  # per panel: beyond this the cloud is drawn on every n-th threshold


def display_columns(k: int, t: int) -> np.ndarray:
    """Threshold indices to draw for ``t`` curves of ``k`` points: all of them, or an even
    stride (always keeping both ends) so the figure stays light. Display only: every number
    shown is computed on the full grid."""
    stride = int(np.ceil(t * k / MAX_CLOUD_POINTS))
    return np.arange(k) if stride <= 1 else np.unique(np.append(np.arange(0, k, stride), k - 1))


def _all_classes_trace(curves: UtilityCurves, names, color, label) -> go.Scattergl:
    cols = display_columns(curves.num_thresholds, curves.utility.shape[0])
    thresholds, utility = curves.thresholds[cols], curves.utility[:, cols]
    t, k = utility.shape
    hover = dict(hoverinfo="skip")
    if t <= HOVER_CLASS_LIMIT:
        hover = dict(text=np.repeat(names, k + 1)[:-1],
                     hovertemplate="class %{text}<br>d = %{x:.3f}<br>U = %{y:.3f}<extra></extra>")
    name = f"{label}: all {t} classes" if label else f"all {t} classes"
    return go.Scattergl(
        x=gapped(np.broadcast_to(thresholds, (t, k))), y=gapped(utility),
        mode="lines", connectgaps=False, name=name, legendgroup=f"all-{label}",
        line=dict(color=rgba(color, float(np.clip(2.0 / np.sqrt(t), 0.06, 0.5))), width=1),
        **hover)


def _worst_trace(curves: UtilityCurves, worst, names, eps, showlegend) -> go.Scattergl:
    k = curves.num_thresholds
    return go.Scattergl(
        x=gapped(np.broadcast_to(curves.thresholds, (len(worst), k))),
        y=gapped(curves.utility[worst]), text=np.repeat(names[worst], k + 1)[:-1],
        mode="lines", connectgaps=False, name=f"worst {eps * 100:g}% of classes",
        legendgroup="worst", showlegend=showlegend, line=dict(color=WORST_COLOR, width=2),
        hovertemplate="worst: class %{text}<br>d = %{x:.3f}<br>U = %{y:.3f}<extra></extra>")


def _mean_trace(curves: UtilityCurves, showlegend) -> go.Scattergl:
    return go.Scattergl(
        x=curves.thresholds, y=curves.utility.mean(axis=0), mode="lines", name="mean Ū(d)",
        legendgroup="mean", showlegend=showlegend, line=dict(color=MEAN_COLOR, width=3.5),
        hovertemplate="mean<br>d = %{x:.3f}<br>Ū = %{y:.3f}<extra></extra>")


def _add_range(fig, curves: UtilityCurves, row, col):
    fig.add_vrect(x0=curves.t_min, x1=curves.t_max, fillcolor=RANGE_FILL, opacity=0.1,
                  layer="below", line=dict(color=RANGE_FILL, width=1, dash="dot"), row=row, col=col)
    for x, end, far, anchor in ((curves.t_min, "t_min", curves.far[0], "left"),
                                (curves.t_max, "t_max", curves.far[-1], "right")):
        fig.add_annotation(x=x, y=1.0, yref="y domain", yanchor="bottom", xanchor=anchor,
                           text=f"{end} {x:.3f}<br>FAR {far:.2g}", showarrow=False,
                           font=dict(size=10, color="#555"), row=row, col=col)


def _add_scores(fig, curves: UtilityCurves, eps, n_worst, row, col):
    t, k = curves.utility.shape
    source = (f"FAR band [{curves.far_range[0]:g}, {curves.far_range[1]:g}]"
              if curves.far_range is not None else
              f"distance range [{curves.distance_range[0]:g}, {curves.distance_range[1]:g}]")
    text = (f"OPIS {opis(curves):.4g}<br>{eps * 100:g}%-OPIS {eps_opis(curves, eps):.4g}"
            f"<br><span style='font-size:10px'>β={curves.beta:g}, K={k}, {t} classes "
            f"({n_worst} worst)<br>{source}</span>")
    fig.add_annotation(x=0.01, y=0.98, xref="x domain", yref="y domain", xanchor="left",
                       yanchor="top", align="left", text=text, showarrow=False,
                       bgcolor="rgba(255,255,255,0.85)", bordercolor="#999", borderwidth=1,
                       row=row, col=col)


def _style_axes(fig, x_range):
    # plotly_white's look, set directly: assigning a template deep-copies it on every slider move
    grid = dict(gridcolor="#ebebeb", zeroline=False, linecolor="#ccc")
    fig.update_xaxes(title_text=X_TITLE, range=list(x_range), **grid)
    fig.update_yaxes(title_text=Y_TITLE, range=list(Y_RANGE), **grid)
    fig.update_layout(plot_bgcolor="white", paper_bgcolor="white", margin=dict(t=80))
