"""A study at a glance: the article's figure of recognition error (1 - R@1) against threshold
inconsistency (OPIS) over losses and batch sizes, baseline circles joined by dotted lines to
their +TCM triangles; and the results table's colors.

Input is a study's table (``study.csv``: one row per run and split with ``loss, batch_size,
seed, tcm, margin_pos, margin_neg, lambda_pos, lambda_neg, split, recall_at_1, opis, eps_opis,
run_dir``). Each (loss, batch size) cell is one point per side: the mean over its seeds, with
error bars of that mean (its standard error across seeds, or its 95% Student t interval) when
it has two seeds or more.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from scipy import stats

from tcm_core.errors import TCMError
from tcm_core.viz._style import TCM_LABEL

SYMBOLS = {False: "circle", True: "triangle-up"}  # triangles drawn 1.3x larger: the same visual weight
LOSS_COLORS = qualitative.D3
ERRORS = ("se", "ci95")
POINT_COLUMNS = ["cell", "loss", "batch_size", "tcm", "seeds", "opis", "opis_err", "error", "error_err",
                 "recall_at_1", "eps_opis", "margin_pos", "margin_neg", "lambda_pos", "lambda_neg"]


def _flag(value) -> bool:
    return value if isinstance(value, (bool, np.bool_)) else str(value).strip().lower() in ("true", "1", "yes")


def _cell(run_dir) -> str:
    """``multi_similarity-bs32/seed-0/tcm`` -> ``multi_similarity-bs32`` (the cell's folder)."""
    return PurePosixPath(str(run_dir).replace("\\", "/")).parts[0]


def _half_width(values: np.ndarray, error: str) -> float:
    """Half-width of the error bar of the mean of ``values`` (NaN with fewer than 2)."""
    n = values.size
    if n < 2:
        return math.nan
    se = float(values.std(ddof=1) / math.sqrt(n))
    return se if error == "se" else float(stats.t.ppf(0.975, n - 1) * se)


def study_points(study: pd.DataFrame, split: str = "test", error: str = "se") -> pd.DataFrame:
    """One row per (cell, side) of a study table (``POINT_COLUMNS``): mean OPIS and recognition
    error ``1 - R@1`` over the seeds on ``split`` with half-widths of their error bars."""
    if error not in ERRORS:
        raise TCMError(f"error must be one of {', '.join(ERRORS)}; got {error!r}")
    rows = study[study["split"] == split].copy()
    if rows.empty:
        raise TCMError(f"the study has no runs measured on the {split!r} split")
    rows["tcm"], rows["cell"] = rows["tcm"].map(_flag), rows["run_dir"].map(_cell)
    rows["error"] = 1.0 - rows["recall_at_1"].astype(float)
    out = []
    for (cell, tcm), g in rows.groupby(["cell", "tcm"], sort=True):
        first = g.iloc[0]
        out.append({"cell": cell, "loss": first["loss"], "batch_size": int(first["batch_size"]), "tcm": bool(tcm),
                    "seeds": int(g["seed"].nunique()), "opis": g["opis"].mean(),
                    "opis_err": _half_width(g["opis"].to_numpy(float), error), "error": g["error"].mean(),
                    "error_err": _half_width(g["error"].to_numpy(float), error),
                    "recall_at_1": g["recall_at_1"].mean(), "eps_opis": g["eps_opis"].mean(),
                    **{k: first[k] for k in ("margin_pos", "margin_neg", "lambda_pos", "lambda_neg")}})
    return pd.DataFrame(out, columns=POINT_COLUMNS).sort_values(["loss", "batch_size", "tcm"], ignore_index=True)


def _sizes(batches: pd.Series) -> pd.Series:
    """Marker size by batch size: 11 px for the smallest, +5 px per doubling (at most 32)."""
    smallest = batches.min()
    return (11 + 5 * np.log2(batches / smallest)).clip(upper=32)


def _hover(tcm: bool) -> str:
    margins = ("<br>m⁺ %{customdata[5]:g}, m⁻ %{customdata[6]:g}, λ⁺ %{customdata[7]:g}, λ⁻ %{customdata[8]:g}"
               if tcm else "")
    return ("<b>%{customdata[2]}" + (f" {TCM_LABEL}" if tcm else " baseline") + "</b><br>"
            "batch size %{customdata[3]}, %{customdata[4]} seed(s)" + margins +
            "<br>OPIS %{x:.4g}<br>recognition error %{y:.3f} (R@1 %{customdata[9]:.3f})"
            "<br><i>click: load this cell</i><extra></extra>")


def _error_bars(values: pd.Series) -> dict:
    finite = values.notna().any()
    return dict(type="data", array=values.fillna(0).tolist(), visible=bool(finite), thickness=1, width=3)


def _markers(g: pd.DataFrame, name: str, color: str, tcm: bool) -> go.Scatter:
    """One loss's circles (base runs) or triangles (+TCM), one per cell, with their error bars."""
    custom = np.stack([g["cell"], np.where(g["tcm"], "tcm", "baseline"), g["loss"], g["batch_size"], g["seeds"],
                       g["margin_pos"], g["margin_neg"], g["lambda_pos"], g["lambda_neg"], g["recall_at_1"]], axis=1)
    marker = dict(symbol=SYMBOLS[tcm], color=color, size=g["size"] * (1.3 if tcm else 1.0), opacity=0.9,
                  line=dict(color="white", width=1))
    return go.Scatter(x=g["opis"], y=g["error"], mode="markers", name=name, legendgroup=g["loss"].iloc[0],
                      customdata=custom, hovertemplate=_hover(tcm), marker=marker,
                      error_x=_error_bars(g["opis_err"]), error_y=_error_bars(g["error_err"]),
                      selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=0.6)))


def accuracy_consistency_figure(study: pd.DataFrame, split: str = "test", error: str = "se") -> go.Figure:
    """Recognition error (1 - R@1) against OPIS: per loss (one color) a circle for each base
    run and a triangle for each +TCM run (marker size by batch size), a dotted line per pair;
    error bars ``error``: "se" (the standard error of the mean over seeds) or "ci95" (its 95%
    Student t interval, very wide with few seeds: x12.7 the standard error with two).
    Each marker's ``customdata`` is ``[cell, side, loss, batch_size, seeds, m+, m-, lambda+,
    lambda-, R@1]``; the cell (its folder name in the study) is what a click loads."""
    points = study_points(study, split, error)
    points["size"] = _sizes(points["batch_size"])
    colors = {loss: LOSS_COLORS[i % len(LOSS_COLORS)] for i, loss in enumerate(sorted(points["loss"].unique()))}
    fig = go.Figure()
    for cell, g in points.groupby("cell", sort=False):  # dotted lines first, markers on top
        fig.add_scatter(x=g["opis"], y=g["error"], mode="lines", line=dict(color=colors[g["loss"].iloc[0]], dash="dot",
                        width=1.5), hoverinfo="skip", showlegend=False, name=f"{cell} pair")
    for loss, color in colors.items():
        for tcm in (False, True):
            g = points[(points["loss"] == loss) & (points["tcm"] == tcm)]
            if not g.empty:
                fig.add_trace(_markers(g, f"{loss} {TCM_LABEL if tcm else 'baseline'}", color, tcm))
    batches = ", ".join(str(b) for b in sorted(points["batch_size"].unique()))
    bars = "95% t interval" if error == "ci95" else "±1 standard error"
    fig.update_layout(
        title=dict(text=f"Recognition error vs threshold inconsistency ({split} split)",
                   subtitle=dict(text=f"○ base loss, △ +TCM, dotted: the same cell · size: batch size ({batches}) · "
                                      f"mean over seeds, bars: {bars} across seeds")),
        xaxis_title="Threshold inconsistency (OPIS, lower is better)",
        yaxis_title="Recognition error (1 − R@1)", height=560, margin=dict(t=90), clickmode="event+select",
        legend=dict(title="loss", groupclick="toggleitem"), hovermode="closest")
    fig.update_xaxes(range=_axis_range(points["opis"], points["opis_err"], low=0.0))
    fig.update_yaxes(range=_axis_range(points["error"], points["error_err"], low=0.0, high=1.0))
    return fig


def _axis_range(values: pd.Series, errors: pd.Series, low: float, high: float = math.inf) -> list[float]:
    """The points and their bars, kept inside [low, high] (OPIS and an error rate are never
    negative; bars reaching past that are clipped), with 6% padding."""
    err = errors.fillna(0.0)
    lo, hi = max(low, float((values - err).min())), min(high, float((values + err).max()))
    pad = 0.06 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1e-3)
    return [max(low, lo - pad), hi + pad]


def clicked_cell(selection) -> tuple[str, str] | None:
    """``(cell, side)`` of the first marker in a plotly selection (Streamlit's
    ``event.selection``, a dict with ``points``), or None when no marker is selected."""
    for point in (selection or {}).get("points", []) or []:
        custom = point.get("customdata")
        if isinstance(custom, (list, tuple)) and len(custom) >= 2:
            return str(custom[0]), str(custom[1])
    return None


# ------------------------------------------------------------------ results table colors

GOOD, BAD = "color: #1a7f37", "color: #cf222e"  # green, red


def _change_color(row: pd.Series, column: str, lower_is_better: bool) -> str:
    """Green or red only when the change's interval excludes zero (as everywhere in the app)."""
    low, high = row.get(f"{column} CI low"), row.get(f"{column} CI high")
    if low is None or high is None or pd.isna(low) or pd.isna(high) or low <= 0 <= high:
        return ""
    return GOOD if (high < 0) == lower_is_better else BAD


def results_display(df: pd.DataFrame) -> pd.DataFrame:
    """``experiments.results.results_table`` as shown: each change followed by its 95% interval
    as text (``"[-30.1, +5.2]"``; empty with one seed), the bound columns dropped."""
    from tcm_core.experiments.results import CHANGES

    out = df.drop(columns=[f"{c} CI {end}" for c in CHANGES for end in ("low", "high")])
    for column in CHANGES:
        low, high = df[f"{column} CI low"], df[f"{column} CI high"]
        text = [f"[{lo:+.1f}, {hi:+.1f}]" if np.isfinite(lo) and np.isfinite(hi) else "" for lo, hi in zip(low, high)]
        out.insert(out.columns.get_loc(column) + 1, f"{column} 95% CI", text)
    return out


def style_results(df: pd.DataFrame):
    """A pandas ``Styler`` of ``results_display(df)``: R@1 to 3 decimals, changes to 1, each
    change green (better) or red (worse) only where its 95% interval excludes 0."""
    from tcm_core.experiments.results import CHANGES, R1_BASE, R1_TCM

    def colors(row):
        out = pd.Series("", index=row.index)
        for column in CHANGES:
            out[column] = _change_color(df.loc[row.name], column, lower_is_better="OPIS" in column)
        return out

    shown = results_display(df)
    number = {R1_BASE: "{:.3f}", R1_TCM: "{:.3f}", **{c: "{:+.1f}" for c in CHANGES}}
    return shown.style.format(number, na_rep="—").apply(colors, axis=1)
