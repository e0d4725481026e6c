"""A pair's report as one self-contained HTML file: the numbers (R@1, MAP@R, OPIS, eps-OPIS of
the baseline and its +TCM twin, the changes with 95% intervals), the figures, the per-class
table, both configs and the software versions. plotly.js is inlined once, so the file opens
from disk with no server and no network (METHOD.md for every number).

``build_pair_report`` gathers plain data (``PairReport``); ``report_html`` writes it out.
"""

from __future__ import annotations

import base64
import html
import importlib.metadata
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from tcm_core.losses.tcm import MARGIN_NEG, MARGIN_POS
from tcm_core.metrics import EvalSettings, distance_histograms, pair_scores
from tcm_core.metrics.change import points_change
from tcm_core.metrics.retrieval import class_hits
from tcm_core.metrics.scores import PairChanges, bootstrap_pair_changes
from tcm_core.viz.class_table import class_table
from tcm_core.viz.export import table_csv
from tcm_core.viz.format import change_with_interval, format_metric

VERSIONED = ("tcm_core", "torch", "numpy", "pandas", "plotly")


@dataclass(frozen=True)
class PairReport:
    """What a report shows. ``numbers``: one row per metric (``metric``, ``baseline`` and ``+TCM``
    as floats, ``kind`` their ``format_metric`` kind, ``change`` as text, ``verdict``: "better" /
    "worse" when the interval excludes zero, else "");
    ``figures``: title -> figure; ``classes``: the per-class table at ``threshold``;
    ``configs``: the two runs' ``config.json``; ``notes``: how the numbers were made."""

    title: str
    numbers: pd.DataFrame
    figures: dict[str, go.Figure]
    classes: pd.DataFrame
    threshold: float
    configs: tuple[dict, dict]
    versions: dict[str, str]
    notes: tuple[str, ...]


def build_pair_report(folder, *, seed: int | None = None, settings: EvalSettings | None = None,
                      threshold: float | None = None) -> PairReport:
    """Everything the report of ``folder`` shows: a pair (``baseline/``, ``tcm/``) or a repeats
    folder (then seed ``seed``'s pair, default the first, plus the changes across seeds).
    ``settings`` default to the baseline's training evaluation settings; ``threshold`` (the
    per-class FAR / FRR columns) to the middle of the baseline's calibration range."""
    from tcm_core.training import runs
    from tcm_core.training.folders import config_dict, folder_pair
    from tcm_core.training.records import load_history
    from tcm_core.training.repeats import seed_pairs

    folder = Path(folder)
    pair = folder_pair(folder, seed, strict=True)
    n_seeds = len(seed_pairs(folder))
    configs = tuple(config_dict(side) for side in (pair.baseline, pair.tcm))
    metrics = [runs.load_metrics(side) for side in (pair.baseline, pair.tcm)]
    settings = settings or (EvalSettings.from_dict(configs[0]["eval"]) if "eval" in configs[0] else EvalSettings())
    (bx, by), (tx, ty) = (runs.load_run_embeddings(side) for side in (pair.baseline, pair.tcm))
    hists = distance_histograms(bx, by), distance_histograms(tx, ty)  # what the threshold page shows
    base, tcm = pair_scores(*hists, settings)
    changes = bootstrap_pair_changes(base, tcm, settings.eps, class_hits(bx, by), class_hits(tx, ty))
    threshold = (base.curves.t_min + base.curves.t_max) / 2 if threshold is None else float(threshold)
    notes = [f"Test split: {base.curves.classes.size} classes, {len(bx):,} embeddings per run. OPIS from the "
             "fine distance histograms, as the app's threshold page (within 0.1% of the exact count). Changes are "
             f"+TCM against its baseline; intervals: {changes.opis.method}."]
    if n_seeds >= 2:
        notes.append(_seed_note(folder, n_seeds, pair.root.name))
    return PairReport(
        title=f"{getattr(pair, 'name', folder.name)}: baseline vs +TCM", numbers=_numbers(base, tcm, metrics, changes, settings.eps),
        figures=_figures(base, tcm, (bx, by), (tx, ty), [load_history(m) for m in metrics], configs[1], settings.eps),
        classes=class_table(base.curves, tcm.curves, *hists, threshold), threshold=threshold, configs=configs,
        versions=versions(), notes=tuple(notes))


def _seed_note(folder: Path, n_seeds: int, name: str) -> str:
    from tcm_core.training.repeats import load_summary, summary_changes

    c = summary_changes(load_summary(folder))
    parts = [f"{label} {change_with_interval(c[key], kind)[0]}" for label, key, kind in (
        ("OPIS", "opis_change_pct", "change"), ("ε-OPIS", "eps_opis_change_pct", "change"),
        ("R@1", "recall_at_1_change_pts", "points"))]
    return (f"A repeats folder of {n_seeds} seeds; everything below is {name}'s pair. Across the seeds "
            f"({c['opis_change_pct'].method}): " + "; ".join(parts) + ".")


def _numbers(base, tcm, metrics, changes: PairChanges, eps: float) -> pd.DataFrame:
    rows = []
    for label, b, t, interval, kind in (
            ("R@1", metrics[0].get("recall_at_1"), metrics[1].get("recall_at_1"), changes.recall_at_1, "share"),
            ("MAP@R", metrics[0].get("map_at_r"), metrics[1].get("map_at_r"), None, "share"),
            ("OPIS", base.opis, tcm.opis, changes.opis, "opis"),
            (f"{eps:g}-OPIS", base.eps_opis, tcm.eps_opis, changes.eps_opis, "opis")):
        change_kind = "points" if kind == "share" else "change"
        if interval is not None:
            text, beyond = change_with_interval(interval, change_kind)
        else:
            text, beyond = format_metric(_points(b, t), change_kind) + " (no interval)", False
        better = (interval is not None) and (interval.value > 0) == (kind == "share")  # OPIS: lower is better
        rows.append({"metric": label, "baseline": b, "+TCM": t, "kind": kind, "change": text, "verdict": ("better" if better else "worse") if beyond else ""})
    return pd.DataFrame(rows)


def _points(b, t):
    return None if b is None or t is None else points_change(b, t)


def _figures(base, tcm, base_xy, tcm_xy, histories, tcm_config: dict, eps: float) -> dict[str, go.Figure]:
    from tcm_core.metrics.similarities import pair_similarities
    from tcm_core.viz.history import history_figure
    from tcm_core.viz.margins import similarity_histogram_figure
    from tcm_core.viz.utility import utility_pair_figure

    figures = {"Per-class utility curves": utility_pair_figure(base.curves, tcm.curves, eps=eps)}
    if any(histories):
        figures["Training history"] = history_figure(dict(zip(("baseline", "+TCM"), histories)))
    figures["What TCM's margins penalize (baseline, test pairs)"] = similarity_histogram_figure(
        pair_similarities(*base_xy), tcm_config.get("margin_pos", MARGIN_POS), tcm_config.get("margin_neg", MARGIN_NEG),
        split="test")
    figures["Embeddings"] = embedding_figure(base_xy, tcm_xy)
    return figures


def embedding_figure(base_xy, tcm_xy) -> go.Figure:
    """The pair's test embeddings as the sphere page draws them: on the sphere (3-D), the
    circle (2-D), or PCA of a stratified sample of 3,000 (more dimensions)."""
    from tcm_core.geometry.projection import pca_2d, stratified_sample
    from tcm_core.viz.sphere import circle_pair_figure, projection_pair_figure, sphere_pair_figure

    dim = base_xy[0].shape[1]
    if dim == 3:
        return sphere_pair_figure(*base_xy, *tcm_xy)
    if dim == 2:
        return circle_pair_figure(*base_xy, *tcm_xy)
    sampled = []
    for x, y in (base_xy, tcm_xy):
        keep = stratified_sample(y, 3000)
        sampled += [pca_2d(x)[keep], np.asarray(y)[keep]]
    return projection_pair_figure(*sampled)


def versions() -> dict[str, str]:
    """Python, the platform and the versions of the packages the numbers depend on."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed" if name != "tcm_core" else _own_version()
    return found


def _own_version() -> str:
    import tcm_core

    return tcm_core.__version__


# ------------------------------------------------------------------------------ the HTML

_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2430;
max-width:1280px;margin:24px auto;padding:0 16px}h1{font-size:26px}h2{font-size:20px;margin-top:32px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;
text-align:right}th{background:#f3f5f8}td.l,th.l{text-align:left}.diff{background:#fff6d6}
.better{color:#1a7f37;font-weight:600}.worse{color:#cf222e;font-weight:600}
.note{color:#555;font-size:13px}.scroll{max-height:480px;overflow:auto}"""


def report_html(report: PairReport) -> str:
    """The report as one HTML document (plotly.js inlined once, no external resource)."""
    from plotly.offline import get_plotlyjs

    esc = html.escape
    parts = [f"<h1>{esc(report.title)}</h1>",
             f"<p class='note'>Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by TCM Explorer.</p>",
             "<h2>Numbers</h2>", _numbers_html(report.numbers),
             *(f"<p class='note'>{esc(n)}</p>" for n in report.notes)]
    for i, (title, fig) in enumerate(report.figures.items()):
        parts += [f"<h2>{esc(title)}</h2>",
                  fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"figure-{i}",
                              config={"displaylogo": False, "responsive": True})]
    csv = base64.b64encode(table_csv(report.classes)).decode("ascii")
    parts += [f"<h2>Per class (FAR / FRR at d = {report.threshold:.3f})</h2>",
              (f"<p class='note'><a download='classes.csv' href='data:text/csv;base64,{csv}'>Download as CSV</a>. "
               "Mean utility over each run's calibration grid; Δ positive: +TCM better.</p>"),
              "<div class='scroll'>" + report.classes.to_html(float_format=lambda v: f"{v:.4f}") + "</div>",
              "<h2>Config</h2>", _config_html(*report.configs),
              "<h2>Versions</h2>", _rows_html([(k, v) for k, v in report.versions.items()], ("package", "version"))]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{esc(report.title)}</title><style>{_CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            + "\n".join(parts) + "</body></html>")


def _numbers_html(numbers: pd.DataFrame) -> str:
    rows = "".join(
        f"<tr><td class='l'>{html.escape(r['metric'])}</td><td>{format_metric(r['baseline'], r['kind'])}</td>"
        f"<td>{format_metric(r['+TCM'], r['kind'])}</td><td class='l {r['verdict']}'>"
        f"{html.escape(r['change'])}</td></tr>" for r in numbers.to_dict("records"))
    return ("<table><tr><th class='l'>metric</th><th>baseline</th><th>+TCM</th>"
            f"<th class='l'>change (95% interval)</th></tr>{rows}</table>")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _config_html(base: dict, tcm: dict) -> str:
    b, t = _flat(base), _flat(tcm)
    rows = "".join(f"<tr{' class=diff' if b.get(k) != t.get(k) else ''}><td class='l'>{html.escape(k)}</td>"
                   f"<td class='l'>{html.escape(repr(b.get(k)))}</td><td class='l'>{html.escape(repr(t.get(k)))}</td></tr>"
                   for k in dict.fromkeys([*b, *t]))
    return ("<table><tr><th class='l'>setting</th><th class='l'>baseline</th><th class='l'>+TCM</th></tr>"
            f"{rows}</table><p class='note'>Highlighted: where the two runs differ.</p>")


def _rows_html(rows, header) -> str:
    head = "".join(f"<th class='l'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='l'>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def pair_report_html(folder, **options) -> str:
    """``report_html(build_pair_report(folder, **options))``."""
    return report_html(build_pair_report(folder, **options))
