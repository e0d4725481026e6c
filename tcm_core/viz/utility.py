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

from tcm_core.errors import TCMError
from tcm_core.metrics import UtilityCurves, eps_opis, opis, worst_classes
from tcm_core.viz._style import (BASELINE_COLOR, FIGURE_TEMPLATE, MEAN_COLOR, PAIR_TITLES, RANGE_FILL, TCM_COLOR,
                                 WORST_COLOR, dict_figure, rgba)

HOVER_CLASS_LIMIT = 500  # above this many classes the all-classes trace has no hover
Y_RANGE = (0.0, 1.02)
X_TITLE, Y_TITLE = "threshold distance d", "utility U(d)"


def utility_figure(curves: UtilityCurves, *, eps: float = 0.1, title: str = "",
                   color: str = BASELINE_COLOR, x_range: Sequence[float] | None = None,
                   scores: tuple[float, float] | None = None) -> go.Figure:
    """Per-class utility curves of one run over its calibration range (shaded), with Ū(d),
    the worst ``eps`` of classes in red and OPIS / ε-OPIS in the corner (``scores``: the
    (OPIS, ε-OPIS) to print there when known more exactly than these curves give them)."""
    traces, shapes, notes = _panel(curves, eps=eps, color=color, axis="", scores=scores)
    layout = _layout(x_range if x_range is not None else padded_range([curves]), ("",), height=440)
    layout.update(shapes=shapes, annotations=notes)
    if title:
        layout["title"] = dict(text=title)
    return dict_figure(traces, layout)


def utility_pair_figure(baseline: UtilityCurves, tcm: UtilityCurves, *, eps: float = 0.1,
                        titles: Sequence[str] = PAIR_TITLES,
                        colors: Sequence[str] = (BASELINE_COLOR, TCM_COLOR),
                        scores: Sequence[tuple[float, float] | None] = (None, None)) -> go.Figure:
    """Baseline and TCM side by side on the same axes (x covers both calibration ranges);
    ``scores`` as in ``utility_figure``, one per run."""
    if len(titles) != 2 or len(colors) != 2:
        raise TCMError(f"titles and colors need two entries each; got {titles!r}, {colors!r}")
    traces, shapes, notes = [], [], []
    for axis, (curves, label, color, known) in zip(("", "2"), zip((baseline, tcm), titles, colors, scores)):
        t, s, a = _panel(curves, eps=eps, color=color, axis=axis, label=label, first=axis == "", scores=known)
        traces += t
        shapes += s
        notes += a
    layout = _layout(padded_range([baseline, tcm]), ("", "2"), height=460)
    titles_notes = [dict(text=text, x=(lo + hi) / 2, y=1.0, xref="paper", yref="paper", xanchor="center",
                         yanchor="bottom", showarrow=False, font=dict(size=16))
                    for text, (lo, hi) in zip(titles, PAIR_DOMAINS)]
    layout.update(shapes=shapes, annotations=titles_notes + notes)
    return dict_figure(traces, layout)


PAIR_DOMAINS = ((0.0, 0.475), (0.525, 1.0))  # make_subplots' domains at horizontal_spacing=0.05


def _layout(x_range, axes: Sequence[str], height: int) -> dict:
    """Axes in plotly_white's look, set directly (a template would be deep-copied per move);
    with two panels the second shares the first's axes and has no y tick labels."""
    grid = dict(gridcolor="#ebebeb", zeroline=False, linecolor="#ccc")
    domains = PAIR_DOMAINS if len(axes) == 2 else ((0.0, 1.0),)
    layout = dict(height=height, plot_bgcolor="white", paper_bgcolor="white", margin=dict(t=80),
                  template=FIGURE_TEMPLATE)
    for axis, domain in zip(axes, domains):
        layout[f"xaxis{axis}"] = dict(anchor=f"y{axis}", domain=list(domain), range=list(x_range),
                                      title=dict(text=X_TITLE), **grid)
        layout[f"yaxis{axis}"] = dict(anchor=f"x{axis}", domain=[0.0, 1.0], range=list(Y_RANGE), **grid)
    layout["yaxis"]["title"] = dict(text=Y_TITLE)
    if len(axes) == 2:
        layout["xaxis2"]["matches"] = "x"
        layout["yaxis2"].update(matches="y", showticklabels=False)
    return layout


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


def _panel(curves: UtilityCurves, *, eps, color, axis, label="", first=True, scores=None):
    """(traces, shapes, annotations) of one panel on axes ``x{axis}``/``y{axis}``."""
    worst = worst_classes(curves, eps)  # raises TCMError for an eps that leaves no "rest"
    names = curves.classes
    refs = dict(xaxis=f"x{axis}", yaxis=f"y{axis}")
    traces = [dict(tr, **refs) for tr in (_all_classes_trace(curves, names, color, label),
                                         _worst_trace(curves, worst, names, eps, first),
                                         _mean_trace(curves, first))]
    shapes, notes = _range(curves, axis)
    return traces, shapes, notes + [_scores_note(curves, eps, len(worst), axis, scores)]


MAX_CLOUD_POINTS = 40_000  # per panel: beyond this the cloud is drawn on every n-th threshold
MAX_WORST_POINTS = 10_000  # per panel, the worst classes' curves (100 of them at 1,000 classes)


def display_columns(k: int, t: int, budget: int = MAX_CLOUD_POINTS) -> np.ndarray:
    """Threshold indices to draw for ``t`` curves of ``k`` points: all of them, or an even
    stride (always keeping both ends) so the figure stays within ``budget`` points and light.
    Display only: every number shown is computed on the full grid."""
    stride = int(np.ceil(t * k / budget))
    return np.arange(k) if stride <= 1 else np.unique(np.append(np.arange(0, k, stride), k - 1))


def _all_classes_trace(curves: UtilityCurves, names, color, label) -> dict:
    cols = display_columns(curves.num_thresholds, curves.utility.shape[0])
    thresholds, utility = curves.thresholds[cols], curves.utility[:, cols]
    t, k = utility.shape
    hover = dict(hoverinfo="skip")
    if t <= HOVER_CLASS_LIMIT:
        labels, field = point_classes(names, k)
        hover = dict(labels, hovertemplate=f"class %{{{field}}}<br>d = %{{x:.3f}}<br>U = %{{y:.3f}}<extra></extra>")
    name = f"{label}: all {t} classes" if label else f"all {t} classes"
    return dict(
        type="scattergl", x=gapped(np.broadcast_to(thresholds, (t, k))), y=gapped(utility),
        mode="lines", connectgaps=False, name=name, legendgroup=f"all-{label}",
        line=dict(color=rgba(color, float(np.clip(2.0 / np.sqrt(t), 0.06, 0.5))), width=1),
        **hover)


def _worst_trace(curves: UtilityCurves, worst, names, eps, showlegend) -> dict:
    cols = display_columns(curves.num_thresholds, len(worst), MAX_WORST_POINTS)
    k = cols.size
    labels, field = point_classes(names[worst], k)
    return dict(
        type="scattergl", x=gapped(np.broadcast_to(curves.thresholds[cols], (len(worst), k))),
        y=gapped(curves.utility[worst][:, cols]), mode="lines", connectgaps=False, name=f"worst {eps * 100:g}% of classes",
        legendgroup="worst", showlegend=showlegend, line=dict(color=WORST_COLOR, width=2),
        hovertemplate=f"worst: class %{{{field}}}<br>d = %{{x:.3f}}<br>U = %{{y:.3f}}<extra></extra>", **labels)


INT32 = np.iinfo(np.int32)


def point_classes(names: np.ndarray, k: int) -> tuple[dict, str]:
    """Each point's class name for the hover of ``gapped`` curves of ``k`` points, and the
    hovertemplate field that shows it: integer names as an int32 ``customdata`` array (sent
    base64-encoded, a tenth of a slider move's JSON at 1,000 classes), others as ``text``."""
    if names.dtype.kind in "iu" and (names.size == 0 or INT32.min <= names.min() and names.max() <= INT32.max):
        return dict(customdata=np.repeat(names.astype(np.int32), k + 1)[:-1]), "customdata"
    return dict(text=np.repeat(names.astype(str), k + 1)[:-1]), "text"


def _mean_trace(curves: UtilityCurves, showlegend) -> dict:
    return dict(
        type="scattergl", x=curves.thresholds, y=curves.utility.mean(axis=0), mode="lines", name="mean Ū(d)",
        legendgroup="mean", showlegend=showlegend, line=dict(color=MEAN_COLOR, width=3.5),
        hovertemplate="mean<br>d = %{x:.3f}<br>Ū = %{y:.3f}<extra></extra>")


def _range(curves: UtilityCurves, axis: str) -> tuple[list[dict], list[dict]]:
    """The shaded calibration range and its two end labels."""
    rect = dict(type="rect", x0=curves.t_min, x1=curves.t_max, y0=0, y1=1, xref=f"x{axis}",
                yref=f"y{axis} domain", fillcolor=RANGE_FILL, opacity=0.1, layer="below",
                line=dict(color=RANGE_FILL, width=1, dash="dot"))
    notes = [dict(x=x, y=1.0, xref=f"x{axis}", yref=f"y{axis} domain", yanchor="bottom", xanchor=anchor,
                  text=f"{end} {x:.3f}<br>FAR {far:.2g}", showarrow=False, font=dict(size=10, color="#555"))
             for x, end, far, anchor in ((curves.t_min, "t_min", curves.far[0], "left"),
                                         (curves.t_max, "t_max", curves.far[-1], "right"))]
    return [rect], notes


def _scores_note(curves: UtilityCurves, eps, n_worst, axis: str, scores=None) -> dict:
    t, k = curves.utility.shape
    value, eps_value = scores if scores is not None else (opis(curves), eps_opis(curves, eps))
    source = (f"FAR band [{curves.far_range[0]:g}, {curves.far_range[1]:g}]"
              if curves.far_range is not None else
              f"distance range [{curves.distance_range[0]:g}, {curves.distance_range[1]:g}]")
    text = (f"OPIS {value:.4g}<br>{eps * 100:g}%-OPIS {eps_value:.4g}"
            f"<br><span style='font-size:10px'>β={curves.beta:g}, K={k}, {t} classes "
            f"({n_worst} worst)<br>{source}</span>")
    return dict(x=0.01, y=0.98, xref=f"x{axis} domain", yref=f"y{axis} domain", xanchor="left",
                yanchor="top", align="left", text=text, showarrow=False,
                bgcolor="rgba(255,255,255,0.85)", bordercolor="#999", borderwidth=1)
