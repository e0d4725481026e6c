"""Figures for choosing TCM's margins: pair-similarity histograms with the penalized bands,
the Pareto front of a margin search (``experiments.tune``) and, for grid searches, OPIS / R@1
heatmaps over the grid, with the lines of text beside them.

Margins are chosen on validation: the search figures show the objective values of each trial
(validation OPIS and R@1, or test for runs without validation), join and highlight the Pareto
front, mark the trials whose OPIS change against the baseline is distinguishable from zero (95%
interval) and give test beside in the hover; ``retrain_lines`` writes a quick retrain's changes
on validation and test with their intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tcm_core.experiments.tune import pareto_mask
from tcm_core.metrics.similarities import SimilarityHistograms, penalized_shares
from tcm_core.viz._style import BASELINE_COLOR, FIGURE_TEMPLATE, MEAN_COLOR, TCM_COLOR, WORST_COLOR, dict_figure, rgba
from tcm_core.viz.format import change_with_interval, format_metric

POS_COLOR, NEG_COLOR = "#2ca02c", "#9467bd"
DISTINGUISHABLE = "OPIS change distinguishable from zero (95% CI excludes 0)"
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
                                bins: int = DISPLAY_BINS, split: str = "test") -> go.Figure:
    """Positive / negative cosine-similarity histograms; shaded: what TCM penalizes
    (positives with s <= m+, negatives with s >= m-); margins as vertical lines. Built from plain
    dicts without plotly's validation: it is redrawn on every margin slider move."""
    x, pos, neg = _coarse(h, bins)
    share_pos, share_neg = penalized_shares(h, margin_pos, margin_neg)
    top = float(max(pos.max(initial=0), neg.max(initial=0))) or 1.0
    floor = max(1e-6, float(min(v[v > 0].min(initial=1.0) for v in (pos, neg))) / 2)
    width = float(x[1] - x[0]) if x.size > 1 else 0.01
    bars = [dict(type="bar", x=x, y=y, name=name, marker=dict(color=rgba(color, 0.55), line=dict(width=0)), width=width)
            for name, y, color in (("positive pairs (same class)", pos, POS_COLOR),
                                   ("negative pairs (different classes)", neg, NEG_COLOR))]
    shapes = [dict(type="rect", x0=x0, x1=x1, y0=0, y1=1, xref="x", yref="y domain", fillcolor=rgba(color, 0.10),
                   line=dict(width=0), layer="below")
              for x0, x1, color in ((-1.0, margin_pos, POS_COLOR), (margin_neg, 1.0, NEG_COLOR))]
    notes = []
    for name, m, color, share, pos_x, y in (("m⁺", margin_pos, POS_COLOR, share_pos, "left", 1.0),
                                            ("m⁻", margin_neg, NEG_COLOR, share_neg, "right", 0.86)):
        side = "positives ≤ m⁺" if name == "m⁺" else "negatives ≥ m⁻"
        shapes.append(dict(type="line", x0=m, x1=m, y0=0, y1=1, xref="x", yref="y domain",
                           line=dict(color=color, width=2, dash="dash")))
        notes.append(dict(x=m, y=y, xref="x", yref="paper", xanchor="right" if pos_x == "left" else "left",
                          yanchor="top", text=f"{name} = {m:.2f}<br>{100 * share:.1f}% of {side} penalized",
                          showarrow=False, font=dict(color=color, size=12), bgcolor="rgba(255,255,255,0.8)"))
    grid = dict(gridcolor="white", zerolinecolor="white", linecolor="white")  # plotly's default look
    layout = dict(template=FIGURE_TEMPLATE, plot_bgcolor="#E5ECF6", paper_bgcolor="white", shapes=shapes,
                  annotations=notes, barmode="overlay", bargap=0, height=420, margin=dict(l=10, r=10, t=40, b=10),
                  title=dict(text=f"Cosine similarity of all {split} pairs; shaded: what TCM penalizes", x=0),
                  xaxis=dict(title=dict(text="cosine similarity s"), range=[-1, 1], **grid),
                  yaxis=dict(title=dict(text="share of pairs per bin (log)"), type="log",
                             range=[np.log10(floor), np.log10(top * 1.5)], **grid),
                  legend=dict(orientation="h", y=-0.18))
    return dict_figure(bars, layout)


def retrain_caption(result) -> str:
    """One line under a quick retrain's numbers (a ``training.retrain.RetrainResult``)."""
    return (f"m⁺ {result.margin_pos:.2f}, m⁻ {result.margin_neg:.2f}. {'Reduced budget; ' if result.reduced else ''}"
            f"trained in {format_metric(result.seconds, 'seconds')}, saved to `{result.out}` (pick it in the sidebar).")


def _split_line(name: str, changes, base_opis, opis, base_r1, r1) -> str:
    """One split's scores and +TCM's changes with their intervals (a ``PairChanges``)."""
    line = (f"{name}: OPIS {format_metric(base_opis, 'opis')} → {format_metric(opis, 'opis')}, "
            f"R@1 {format_metric(base_r1, 'share')} → {format_metric(r1, 'share')}")
    if changes is None:
        return line + "."
    opis_text = change_with_interval(changes.opis, "change")[0]
    r1_text = "" if changes.recall_at_1 is None else f"; R@1 {change_with_interval(changes.recall_at_1, 'points')[0]}"
    return f"{line}. Change: OPIS {opis_text}{r1_text}."


def retrain_lines(result) -> list[str]:
    """A quick retrain's numbers (a ``training.retrain.RetrainResult``), baseline → retrained,
    with +TCM's changes and their 95% paired-bootstrap intervals: validation first (where
    margins are chosen), then test (reported beside)."""
    lines = []
    if result.val_opis is None:
        lines.append("No validation split in these runs (written before validation existed): "
                     "only test is known, so a choice made here is made on test.")
    else:
        lines.append(_split_line("Validation (margins are chosen here)", result.validation,
                                 result.baseline_val_opis, result.val_opis,
                                 result.baseline_val_recall_at_1, result.val_recall_at_1))
    lines.append(_split_line("Test (reported beside, not chosen on)", result.test, result.baseline_opis,
                             result.opis, result.baseline_recall_at_1, result.recall_at_1))
    return lines


def retrain_note(budget) -> str:
    """What a quick retrain trains (a ``training.retrain.RetrainBudget``), for the margins page."""
    return ("Frozen-backbone runs retrain their head on the cached features with the run's whole budget "
            f"(seconds); others get a reduced budget ({budget.max_train_samples:,} training images, "
            f"{budget.max_epochs} epoch{'s' if budget.max_epochs != 1 else ''}), with their baseline retrained under it.")


# ------------------------------------------------------------------ margin search

def finished_trials(df: pd.DataFrame) -> pd.DataFrame:
    """The finished trials of a ``experiments.tune.trials_frame`` table, by number."""
    return df[(df["state"] == "COMPLETE") & df["objective_opis"].notna()].sort_values("number")


def chosen_split(df: pd.DataFrame) -> str:
    """"validation" unless every finished trial was chosen on test (runs without validation)."""
    on = finished_trials(df)["chosen_on"].dropna()
    return "test" if len(on) and (on == "test").all() else "validation"


def distinguishable(df: pd.DataFrame) -> np.ndarray:
    """Rows whose OPIS change on the split the margins are chosen on excludes zero (95% CI)."""
    key = "val_opis_change" if chosen_split(df) == "validation" else "test_opis_change"
    low, high = df[f"{key}_low"].to_numpy(float), df[f"{key}_high"].to_numpy(float)
    return np.asarray((low > 0) | (high < 0), bool)  # False for NaN bounds


def _change_text(value, low, high) -> str:
    """``−12.0% [−30.1% … +5.2%]`` of a change and its interval."""
    if pd.isna(value):
        return "—"
    value, low, high = (format_metric(None if pd.isna(v) else v, "change") for v in (value, low, high))
    return f"{value} [{low} … {high}]"


def _hover(row) -> str:
    change = lambda key: _change_text(row[key], row[f"{key}_low"], row[f"{key}_high"])  # noqa: E731
    return (f"trial {int(row['number'])}: m⁺ {row['margin_pos']:g}, m⁻ {row['margin_neg']:g}<br>"
            f"validation: OPIS {format_metric(row['val_opis'], 'opis')}, change {change('val_opis_change')}, "
            f"R@1 {format_metric(row['val_recall_at_1'], 'share')}<br>"
            f"test: OPIS {format_metric(row['opis'], 'opis')}, change {change('test_opis_change')}, "
            f"R@1 {format_metric(row['recall_at_1'], 'share')}")


def _points(rows: pd.DataFrame, name: str, marker: dict, **options) -> go.Scatter:
    """Trials as points at (OPIS, R@1); ``customdata``: their numbers (for a click)."""
    return go.Scatter(x=rows["objective_opis"].tolist(), y=rows["objective_recall_at_1"].tolist(), name=name,
                      marker=marker, text=[_hover(r) for _, r in rows.iterrows()],
                      customdata=[int(n) for n in rows["number"]],
                      hovertemplate="%{text}<extra></extra>", **{"mode": "markers", **options})


def pareto_figure(df: pd.DataFrame, best: int | None = None) -> go.Figure:
    """OPIS (x, lower is better) against R@1 (y, higher is better) of every finished trial on the
    split the margins are chosen on; the Pareto front joined and highlighted, trials whose OPIS
    change excludes zero ringed, trial ``best`` starred and the baseline under the same budget
    crossed. The hover gives each trial's margins, validation and test."""
    rows, split = finished_trials(df), chosen_split(df)
    fig = go.Figure()
    if not rows.empty:
        front = rows[pareto_mask(rows)].sort_values("objective_opis")
        fig.add_trace(_points(rows, "trials", dict(size=9, color=rgba(BASELINE_COLOR, 0.55))))
        fig.add_trace(_points(front, "Pareto front", dict(size=13, color=TCM_COLOR, line=dict(width=1, color="white")),
                              mode="lines+markers", line=dict(color=TCM_COLOR, width=2)))
        marked = rows[distinguishable(rows)]
        if not marked.empty:
            fig.add_trace(_points(marked, DISTINGUISHABLE, dict(symbol="circle-open", size=22,
                                                               line=dict(width=2, color=MEAN_COLOR))))
        if best is not None and best in set(rows["number"]):
            fig.add_trace(_points(rows[rows["number"] == best], "suggested",
                                  dict(symbol="star", size=18, color=WORST_COLOR, line=dict(width=1, color="white"))))
        _add_baseline(fig, rows, split)
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2),
                      title=dict(text=f"Trials on {split}: lower OPIS and higher R@1 are better", x=0),
                      xaxis=dict(title=f"{split} OPIS (lower is better)"),
                      yaxis=dict(title=f"{split} R@1 (higher is better)"))
    return fig


def _add_baseline(fig: go.Figure, rows: pd.DataFrame, split: str) -> None:
    keys = ("baseline_val_opis", "baseline_val_recall_at_1") if split == "validation" else (
        "baseline_opis", "baseline_recall_at_1")
    base = rows[list(keys)].dropna()
    if not base.empty:
        x, y = base.iloc[-1]
        fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers", name="baseline (same budget)",
                                 marker=dict(symbol="x", size=12, color=BASELINE_COLOR),
                                 hovertemplate=f"baseline: OPIS {format_metric(x, 'opis')}, "
                                               f"R@1 {format_metric(y, 'share')}<extra></extra>"))


def _grid_cells(df: pd.DataFrame) -> pd.DataFrame:
    """One finished trial per (m+, m-), the last one."""
    return finished_trials(df).drop_duplicates(["margin_pos", "margin_neg"], keep="last")


def _grid(cells: pd.DataFrame, key: str):
    pos, neg = sorted(cells["margin_pos"].unique()), sorted(cells["margin_neg"].unique())
    z = np.full((len(pos), len(neg)), np.nan)
    for _, c in cells.iterrows():
        z[pos.index(c["margin_pos"]), neg.index(c["margin_neg"])] = c[key]
    return pos, neg, z


def _markers(cells: pd.DataFrame, name: str, showlegend: bool, marker: dict) -> go.Scatter:
    return go.Scatter(x=[f"{v:g}" for v in cells["margin_neg"]], y=[f"{v:g}" for v in cells["margin_pos"]],
                      mode="markers", name=name, showlegend=showlegend, marker=marker, hoverinfo="skip")


def grid_heatmaps(df: pd.DataFrame, best: int | None = None) -> go.Figure:
    """OPIS and R@1 of a grid search over the (m-, m+) grid on the split the margins are chosen
    on: Pareto cells ringed, trial ``best`` starred, cells whose OPIS change excludes zero boxed
    with a "*" after their OPIS; the hover gives validation and test."""
    cells, split = _grid_cells(df), chosen_split(df)
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"{split} OPIS (lower is better)",
                                                        f"{split} R@1 (higher is better)"), horizontal_spacing=0.12)
    if cells.empty:
        return fig
    front, marked = cells[pareto_mask(cells)], cells[distinguishable(cells)]
    maps = ((1, "objective_opis", "Blues_r", ".4f"), (2, "objective_recall_at_1", "Oranges", ".3f"))
    for col, key, scale, fmt in maps:
        pos, neg, z = _grid(cells, key)
        text = [["" if np.isnan(v) else format(v, fmt) for v in row] for row in z]
        info = [["" for _ in row] for row in z]
        for _, c in cells.iterrows():
            i, j = pos.index(c["margin_pos"]), neg.index(c["margin_neg"])
            info[i][j] = _hover(c)
            if col == 1 and c["number"] in set(marked["number"]):
                text[i][j] += "*"
        fig.add_trace(go.Heatmap(z=z, x=[f"{v:g}" for v in neg], y=[f"{v:g}" for v in pos], colorscale=scale,
                                 showscale=False, name=key, text=text, customdata=info, texttemplate="%{text}",
                                 hovertemplate="%{customdata}<extra></extra>"), row=1, col=col)
        fig.add_trace(_markers(front, "Pareto cells", col == 1,
                               dict(symbol="circle-open", size=34, line=dict(width=3, color=BASELINE_COLOR))),
                      row=1, col=col)
        if col == 1 and not marked.empty:
            fig.add_trace(_markers(marked, DISTINGUISHABLE, True,
                                   dict(symbol="square-open", size=44, line=dict(width=2, color=TCM_COLOR))),
                          row=1, col=col)
        if best is not None and best in set(cells["number"]):
            fig.add_trace(_markers(cells[cells["number"] == best], "suggested", col == 1,
                                   dict(symbol="star", size=16, color=WORST_COLOR, line=dict(width=1, color="white"))),
                          row=1, col=col)
        fig.update_xaxes(title_text="m⁻ (margin_neg)", type="category", row=1, col=col)
        fig.update_yaxes(title_text="m⁺ (margin_pos)", type="category", row=1, col=col)
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def tune_status(snapshot) -> str:
    """The progress line of a ``tasks.tune.TuneTask``'s snapshot."""
    p = snapshot.progress
    return (f"{snapshot.status.value}: {snapshot.stage} · {p.done}/{p.total} trials finished · "
            f"{format_metric(snapshot.elapsed, 'seconds')}")


def tune_caption(df: pd.DataFrame) -> str:
    """What the search figures show and mark (a ``trials_frame`` table)."""
    if chosen_split(df) == "validation":
        where = ("Margins are chosen on the validation classes (held out from training and from test): the "
                 "figure shows validation, and test is reported beside it (hover a trial). ")
    else:
        where = ("These runs have no validation split (written before validation existed), so the figure shows "
                 "test and a choice made here is made on test classes. ")
    return (f"{where}Each point is a finished trial (a fair quick retrain); joined: the Pareto front (no other "
            "trial has both lower OPIS and higher R@1); ×: the baseline under the same budget; star: the "
            "suggestion (lowest OPIS among Pareto trials within 0.5 R@1 points of the best); "
            f"ringed (boxed with * on the grid): {DISTINGUISHABLE}.")


def trial_text(row) -> str:
    """One trial (a ``trials_frame`` row) for a picker: the scores it is chosen on, then test."""
    test = f"test OPIS {format_metric(row['opis'], 'opis')}, R@1 {format_metric(row['recall_at_1'], 'share')}"
    split = row["chosen_on"] if isinstance(row["chosen_on"], str) else "validation"
    return (f"trial {int(row['number'])}: m⁺ {row['margin_pos']:g}, m⁻ {row['margin_neg']:g} · {split} "
            f"OPIS {format_metric(row['objective_opis'], 'opis')}, "
            f"R@1 {format_metric(row['objective_recall_at_1'], 'share')} · {test}")


def recheck_caption(result) -> str:
    """One line under a re-check's numbers (an ``experiments.tune.RecheckResult``)."""
    return (f"m⁺ {result.margin_pos:g}, m⁻ {result.margin_neg:g} trained with the run's whole budget on "
            f"{len(result.seeds)} seeds ({', '.join(map(str, result.seeds))}); test classes; intervals: 95% Student t "
            f"across seeds. Saved to `{result.out}` (pick it in the sidebar).")
