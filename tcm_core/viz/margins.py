"""Figures for choosing TCM's margins: pair-similarity histograms with the penalized bands,
and OPIS / R@1 heatmaps of a margin sweep with its Pareto cells."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tcm_core.margins import SimilarityHistograms, penalized_shares
from tcm_core.sweep import pareto_cells
from tcm_core.viz._style import BASELINE_COLOR, TCM_COLOR, WORST_COLOR, rgba

POS_COLOR, NEG_COLOR = "#2ca02c", "#9467bd"
DISPLAY_BINS = 200


def _coarse(h: SimilarityHistograms, bins: int):
    """Counts per coarse bin as shares of each side's pairs (density-like, both sides comparable)."""
    fine = h.pos_count.size
    step = max(1, fine // bins)
    usable = fine - fine % step
    pos = h.pos_count[:usable].reshape(-1, step).sum(1)
    neg = h.neg_count[:usable].reshape(-1, step).sum(1)
    centers = h.edges[:usable + 1:step]
    centers = 0.5 * (centers[1:] + centers[:-1])
    return centers, pos / max(1, pos.sum()), neg / max(1, neg.sum())


def similarity_histogram_figure(h: SimilarityHistograms, margin_pos: float, margin_neg: float,
                                bins: int = DISPLAY_BINS) -> go.Figure:
    """Positive / negative cosine-similarity histograms; shaded: what TCM penalizes
    (positives with s <= m+, negatives with s >= m-); margins as vertical lines."""
    x, pos, neg = _coarse(h, bins)
    share_pos, share_neg = penalized_shares(h, margin_pos, margin_neg)
    top = float(max(pos.max(initial=0), neg.max(initial=0))) or 1.0
    floor = max(1e-6, float(min(v[v > 0].min(initial=1.0) for v in (pos, neg))) / 2)
    fig = go.Figure()
    fig.add_vrect(x0=-1.0, x1=margin_pos, fillcolor=rgba(POS_COLOR, 0.10), line_width=0, layer="below")
    fig.add_vrect(x0=margin_neg, x1=1.0, fillcolor=rgba(NEG_COLOR, 0.10), line_width=0, layer="below")
    for name, y, color in (("positive pairs (same class)", pos, POS_COLOR),
                           ("negative pairs (different classes)", neg, NEG_COLOR)):
        fig.add_trace(go.Bar(x=x, y=y, name=name, marker_color=rgba(color, 0.55),
                             marker_line_width=0, width=float(x[1] - x[0]) if x.size > 1 else 0.01))
    for name, m, color, share, pos_x, y in (("m⁺", margin_pos, POS_COLOR, share_pos, "left", 1.0),
                                            ("m⁻", margin_neg, NEG_COLOR, share_neg, "right", 0.86)):
        side = "positives ≤ m⁺" if name == "m⁺" else "negatives ≥ m⁻"
        fig.add_vline(x=m, line=dict(color=color, width=2, dash="dash"))
        fig.add_annotation(x=m, y=y, yref="paper", xanchor="right" if pos_x == "left" else "left", yanchor="top",
                           text=f"{name} = {m:.2f}<br>{100 * share:.1f}% of {side} penalized",
                           showarrow=False, font=dict(color=color, size=12),
                           bgcolor="rgba(255,255,255,0.8)")
    fig.update_layout(barmode="overlay", bargap=0, height=420, margin=dict(l=10, r=10, t=40, b=10),
                      title=dict(text="Cosine similarity of all test pairs; shaded: what TCM penalizes", x=0),
                      xaxis=dict(title="cosine similarity s", range=[-1, 1]),
                      yaxis=dict(title="share of pairs per bin (log)", type="log",
                                 range=[np.log10(floor), np.log10(top * 1.5)]),
                      legend=dict(orientation="h", y=-0.18))
    return fig


def _grid(results, key):
    pos = sorted({c.margin_pos for c in results})
    neg = sorted({c.margin_neg for c in results})
    z = np.full((len(pos), len(neg)), np.nan)
    for c in results:
        z[pos.index(c.margin_pos), neg.index(c.margin_neg)] = getattr(c, key)
    return pos, neg, z


def sweep_heatmaps(results, best=None) -> go.Figure:
    """OPIS (lower is better) and R@1 (higher is better) over the (m-, m+) grid; Pareto cells
    ringed, ``best`` (a cell or None) starred."""
    results = list(results)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("OPIS (lower is better)", "R@1 (higher is better)"),
                        horizontal_spacing=0.12)
    if not results:
        return fig
    front = pareto_cells(results)
    for col, key, scale, fmt in ((1, "opis", "Blues_r", ".4f"), (2, "recall_at_1", "Oranges", ".3f")):
        pos, neg, z = _grid(results, key)
        xs, ys = [f"{v:g}" for v in neg], [f"{v:g}" for v in pos]
        fig.add_trace(go.Heatmap(z=z, x=xs, y=ys, colorscale=scale, showscale=False, name=key,
                                 text=[[("" if np.isnan(v) else format(v, fmt)) for v in row] for row in z],
                                 texttemplate="%{text}", hovertemplate="m⁻ %{x}, m⁺ %{y}: %{text}<extra></extra>"),
                      row=1, col=col)
        fig.add_trace(go.Scatter(x=[f"{c.margin_neg:g}" for c in front], y=[f"{c.margin_pos:g}" for c in front],
                                 mode="markers", name="Pareto cells", showlegend=col == 1,
                                 marker=dict(symbol="circle-open", size=34, line=dict(width=3, color=BASELINE_COLOR))),
                      row=1, col=col)
        if best is not None:
            fig.add_trace(go.Scatter(x=[f"{best.margin_neg:g}"], y=[f"{best.margin_pos:g}"], mode="markers",
                                     name="suggested", showlegend=col == 1,
                                     marker=dict(symbol="star", size=16, color=WORST_COLOR,
                                                 line=dict(width=1, color="white"))), row=1, col=col)
        fig.update_xaxes(title_text="m⁻ (margin_neg)", type="category", row=1, col=col)
        fig.update_yaxes(title_text="m⁺ (margin_pos)", type="category", row=1, col=col)
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25),
                      colorway=[TCM_COLOR])
    return fig
