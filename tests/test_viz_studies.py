"""The accuracy-vs-consistency figure (issue 10, item 4): circles for base runs, triangles for
+TCM, a dotted line per pair, error bars across seeds, customdata naming the cell."""

import math

import pandas as pd
import pytest
from scipy import stats

from tcm_core.errors import TCMError
from tcm_core.experiments.results import results_table
from tcm_core.viz.studies import (accuracy_consistency_figure, clicked_cell, results_display, study_points,
                                  style_results)
from test_results import make_study


def _table(rows):
    base = dict(dataset="digits", backbone="small_cnn", margin_pos=0.9, margin_neg=0.5, lambda_pos=1.0,
                lambda_neg=1.0, map_at_r=0.5, eps_opis=0.01)
    return pd.DataFrame([{**base, **r} for r in rows])


def _rows(loss, batch, seeds, values):
    """values[(seed, tcm)] = (recall_at_1, opis), on the test split (and a validation twin)."""
    out = []
    for seed in seeds:
        for tcm in (False, True):
            r1, opis = values[(seed, tcm)]
            run = f"{loss}-bs{batch}/seed-{seed}/{'tcm' if tcm else 'baseline'}"
            out += [dict(loss=loss, batch_size=batch, seed=seed, tcm=tcm, split=split, recall_at_1=r1 - d,
                         opis=opis + d, run_dir=run) for split, d in (("test", 0.0), ("validation", 0.01))]
    return out


@pytest.fixture
def table():
    ms = {(0, False): (0.80, 0.030), (1, False): (0.84, 0.034), (2, False): (0.82, 0.026),
          (0, True): (0.83, 0.020), (1, True): (0.85, 0.024), (2, True): (0.84, 0.022)}
    arc = {(0, False): (0.70, 0.05), (0, True): (0.72, 0.06)}
    return _table(_rows("multi_similarity", 32, (0, 1, 2), ms) + _rows("multi_similarity", 128, (0, 1, 2), ms)
                  + _rows("arcface", 64, (0,), arc))


def test_points_are_means_over_seeds_with_standard_errors_or_t_intervals(table):
    points = study_points(table, error="ci95").set_index(["cell", "tcm"])
    p = points.loc[("multi_similarity-bs32", False)]
    assert p["seeds"] == 3 and p["opis"] == pytest.approx(0.030) and p["error"] == pytest.approx(1 - 0.82)
    assert p["opis_err"] == pytest.approx(stats.t.ppf(0.975, 2) * stats.sem([0.030, 0.034, 0.026]))
    assert study_points(table).set_index(["cell", "tcm"]).loc[("multi_similarity-bs32", False), "opis_err"] \
        == pytest.approx(stats.sem([0.030, 0.034, 0.026]))
    assert math.isnan(points.loc[("arcface-bs64", True), "opis_err"])  # one seed: no error bar
    assert study_points(table, "validation").set_index(["cell", "tcm"]).loc[("arcface-bs64", True), "opis"] \
        == pytest.approx(0.07)
    with pytest.raises(TCMError, match="no runs"):
        study_points(table[table["split"] == "test"], "validation")


def test_figure_circles_triangles_dotted_lines_and_customdata(table):
    fig = accuracy_consistency_figure(table)
    markers = [t for t in fig.data if t.mode == "markers"]
    lines = [t for t in fig.data if t.mode == "lines"]
    assert {t.marker.symbol for t in markers} == {"circle", "triangle-up"}
    assert all((t.marker.symbol == "triangle-up") == t.name.endswith("+TCM") for t in markers)
    assert len(lines) == 3 and all(t.line.dash == "dot" for t in lines)  # one per (loss, batch size) pair
    for line in lines:  # each joins its cell's circle and triangle
        assert len(line.x) == 2
    ms_base = next(t for t in markers if t.name == "multi_similarity baseline")
    assert list(ms_base.customdata[:, 0]) == ["multi_similarity-bs32", "multi_similarity-bs128"]
    assert list(ms_base.customdata[:, 1]) == ["baseline", "baseline"]
    assert ms_base.marker.size[1] > ms_base.marker.size[0]  # bigger batch, bigger marker
    assert ms_base.error_x.visible and ms_base.error_y.visible and ms_base.error_x.array[0] > 0  # >= 2 seeds
    arc = [t for t in markers if t.name.startswith("arcface")]
    assert not any(t.error_x.visible for t in arc)  # one seed: no bars
    assert len({t.marker.color for t in markers}) == 2  # one color per loss
    assert ms_base.y[0] == pytest.approx(1 - 0.82) and ms_base.x[0] == pytest.approx(0.030)
    assert "Recognition error" in fig.layout.yaxis.title.text and "OPIS" in fig.layout.xaxis.title.text
    assert "m⁺" in next(t for t in markers if t.name.endswith("+TCM")).hovertemplate


def test_clicked_cell_reads_the_selection():
    point = {"curve_number": 4, "point_index": 1, "x": 0.03, "y": 0.2,
             "customdata": ["multi_similarity-bs128", "tcm", "multi_similarity", 128, 3, 0.9, 0.5, 1, 1, 0.8]}
    assert clicked_cell({"points": [point], "point_indices": [1], "box": [], "lasso": []}) == ("multi_similarity-bs128", "tcm")
    assert clicked_cell({"points": [], "point_indices": []}) is None
    assert clicked_cell(None) is None
    assert clicked_cell({"points": [{"x": 1, "y": 2}]}) is None  # a point without customdata


def test_figure_from_a_study_csv_on_disk(tmp_path):
    study = make_study(tmp_path, seeds=(0, 1))
    df = pd.read_csv(study / "study.csv")
    fig = accuracy_consistency_figure(df)
    assert sum(t.mode == "lines" for t in fig.data) == 4
    cells = {c for t in fig.data if t.mode == "markers" for c in t.customdata[:, 0]}
    assert cells == {p.name for p in study.iterdir() if p.is_dir()}
    fig.to_json()  # serializable as Streamlit sends it


def test_style_colors_only_changes_whose_interval_excludes_zero(tmp_path):
    make_study(tmp_path, losses=("arcface",), batches=(16, 32, 64), seeds=(0, 1))
    df = results_table(tmp_path)
    df.loc[0, ["ΔOPIS (%)", "ΔOPIS (%) CI low", "ΔOPIS (%) CI high"]] = [-20.0, -30.0, -10.0]
    df.loc[1, ["ΔOPIS (%)", "ΔOPIS (%) CI low", "ΔOPIS (%) CI high"]] = [-20.0, -30.0, 5.0]
    df.loc[2, ["ΔR@1 (pts)", "ΔR@1 (pts) CI low", "ΔR@1 (pts) CI high"]] = [-2.0, -3.0, -1.0]
    shown = results_display(df)
    assert "ΔOPIS (%) CI low" not in shown and list(shown["ΔOPIS (%) 95% CI"][:2]) == ["[-30.0, -10.0]", "[-30.0, +5.0]"]
    assert list(shown.columns).index("ΔOPIS (%) 95% CI") == list(shown.columns).index("ΔOPIS (%)") + 1
    styler = style_results(df)
    styles = styler._compute().ctx
    col = list(shown.columns).index("ΔOPIS (%)")
    assert ("color", "#1a7f37") in styles[(0, col)]  # OPIS down with an interval below 0: green
    assert not styles.get((1, col))  # within noise: not colored
    assert ("color", "#cf222e") in styles[(2, list(shown.columns).index("ΔR@1 (pts)"))]  # R@1 down: red
    assert "-20.0" in styler.to_html()


def test_one_seed_rows_show_no_interval(tmp_path):
    make_study(tmp_path, losses=("arcface",), batches=(16,), seeds=(0,))
    shown = results_display(results_table(tmp_path))
    assert list(shown["ΔOPIS (%) 95% CI"]) == [""]
