"""Training-history figure: per-epoch metrics of one or more runs (``metrics.json`` ``history``),
one subplot per metric, one line per run, the same color for a run in every subplot."""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tcm_core.errors import TCMError
from tcm_core.viz._style import run_colors

METRIC_TITLES = {
    "loss": "loss", "base_loss": "base loss", "tcm_loss": "TCM loss",
    "recall_at_1": "R@1", "map_at_r": "MAP@R", "opis": "OPIS (lower is better)",
    "eps_opis": "ε-OPIS (lower is better)", "t_min": "t_min", "t_max": "t_max",
    "seconds": "seconds per epoch",
}


def history_figure(histories: Mapping[str, Sequence],
                   metrics: Sequence[str] = ("loss", "recall_at_1", "opis")) -> go.Figure:
    """``histories``: run name -> its per-epoch ``EpochRecord``s (or metrics.json dicts).

    A missing or ``None`` value leaves a gap; an empty history gives an empty line, so the
    figure still builds before the first epoch ends. Baseline is blue, TCM orange.
    """
    metrics = list(metrics)
    if not metrics:
        raise TCMError("history_figure needs at least one metric name, e.g. ('loss', 'opis')")
    fig = make_subplots(rows=1, cols=len(metrics), horizontal_spacing=0.07,
                        subplot_titles=[METRIC_TITLES.get(m, m) for m in metrics])
    colors = run_colors(histories)
    for name, history in histories.items():
        color = colors[name]
        for col, metric in enumerate(metrics, start=1):
            fig.add_trace(_run_trace(name, history, metric, color, showlegend=col == 1),
                          row=1, col=col)
    _style(fig, histories)
    return fig


def epoch_series(history: Sequence, metric: str) -> tuple[list, list]:
    """``(epochs, values)`` of ``EpochRecord``s or metrics.json dicts; epochs default to
    1, 2, ... and missing values become ``None``."""
    epochs = [_field(row, "epoch") or i + 1 for i, row in enumerate(history)]
    values = [_number(_field(row, metric)) for row in history]
    return epochs, values


def _field(row, name: str):
    return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)


def _number(value):
    return None if value is None else float(value)


def _run_trace(name, history, metric, color, showlegend) -> go.Scatter:
    epochs, values = epoch_series(history, metric)
    return go.Scatter(
        x=epochs, y=values, mode="lines+markers", name=str(name), legendgroup=str(name),
        showlegend=showlegend, line=dict(color=color, width=2), marker=dict(color=color, size=7),
        hovertemplate=f"{name}<br>epoch %{{x}}<br>{metric} = %{{y:.4g}}<extra></extra>")


def _style(fig, histories):
    n_epochs = max((len(h) for h in histories.values()), default=0)
    fig.update_xaxes(title_text="epoch", dtick=1 if n_epochs <= 15 else None)
    fig.update_layout(template="plotly_white", height=360, margin=dict(t=60))
    if n_epochs == 0:
        fig.add_annotation(text="no epochs recorded yet", x=0.5, y=0.5, xref="paper",
                           yref="paper", showarrow=False, font=dict(size=14, color="#777"))
