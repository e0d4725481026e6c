"""tcm_core.viz: figures and tables built from real UtilityCurves / DistanceHistograms."""

import json
import math
import time

import numpy as np
import pytest
from conftest import clustered, synthetic_curves

from tcm_core.errors import TCMError
from tcm_core.metrics import distance_histograms, eps_opis, opis, utility_curves, worst_classes
from tcm_core.viz.utility import MAX_CLOUD_POINTS, MAX_WORST_POINTS, display_columns
from tcm_core.metrics import class_rates, points_change, relative_change
from tcm_core.viz import (change_color, class_table, format_metric, history_figure, utility_figure,
                          utility_pair_figure)

TABLE = np.array([  # METHOD.md's worked example
    [0, 0, 0.9333, 0.8571, 0.8571],
    [0, 0, 0, 0, 0.6667],
    [1, 1, 0.9333, 0.8571, 0.8571],
])


def segments(values, k):
    """Split a NaN-gapped line back into its (rows, k) curves; checks the separators."""
    v = np.asarray(values, dtype=np.float64)
    rows = (v.size + 1) // (k + 1)
    assert v.size == rows * k + rows - 1
    gaps = np.isnan(v)
    assert gaps.sum() == rows - 1
    assert np.all(gaps[k::k + 1])  # exactly one gap after each curve but the last
    return v[~gaps].reshape(rows, k)


def by_name(fig, prefix):
    (trace,) = [t for t in fig.data if t.name.startswith(prefix)]
    return trace


@pytest.fixture
def six_curves(six_points):
    x, y = six_points
    return utility_curves(x, y, distance_range=(0.3, 1.5), num_thresholds=5)


@pytest.fixture(scope="module")
def runs():
    """Two 'runs' on different random clusters: histograms and curves for each."""
    out = []
    for seed in (0, 1):
        x, y = clustered(seed, n=300, classes=10)
        hist = distance_histograms(x, y)
        out.append((x, y, hist, hist.curves()))
    return out


# ---- utility_figure -------------------------------------------------------------------------

def test_worked_example_traces(six_curves):
    fig = utility_figure(six_curves, eps=0.1, title="six points")
    assert [t.type for t in fig.data] == ["scattergl"] * 3
    everyone, worst = by_name(fig, "all 3 classes"), by_name(fig, "worst")
    mean = by_name(fig, "mean")
    np.testing.assert_allclose(segments(everyone.y, 5), TABLE, atol=5e-5)
    np.testing.assert_allclose(segments(everyone.x, 5), np.tile([0.3, 0.6, 0.9, 1.2, 1.5], (3, 1)),
                               atol=1e-6)
    np.testing.assert_allclose(segments(worst.y, 5), TABLE[[1]], atol=5e-5)
    assert set(worst.customdata) == {1}  # class 1 is the worst, as METHOD.md says
    np.testing.assert_allclose(mean.y, TABLE.mean(axis=0), atol=5e-5)
    assert fig.layout.title.text == "six points"


def test_worked_example_layout(six_curves):
    fig = utility_figure(six_curves)
    (rect,) = fig.layout.shapes
    assert (rect.x0, rect.x1) == pytest.approx((0.3, 1.5))
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert "OPIS 0.1619" in texts and "10%-OPIS 0.4284" in texts
    assert "t_min 0.300" in texts and "t_max 1.500" in texts
    assert "distance range [0.3, 1.5]" in texts
    assert fig.layout.xaxis.title.text == "threshold distance d"
    assert fig.layout.yaxis.title.text == "utility U(d)"
    assert tuple(fig.layout.yaxis.range) == (0.0, 1.02)
    lo, hi = fig.layout.xaxis.range
    assert lo < 0.3 and hi > 1.5
    assert tuple(utility_figure(six_curves, x_range=(0, 2)).layout.xaxis.range) == (0, 2)


def test_clustered_traces_match_curves(runs):
    curves = runs[0][3]
    t, k = curves.utility.shape
    fig = utility_figure(curves, eps=0.3, color="#ff7f0e")
    everyone, worst, mean = by_name(fig, "all"), by_name(fig, "worst"), by_name(fig, "mean")
    np.testing.assert_allclose(segments(everyone.y, k), curves.utility, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(mean.y, curves.utility.mean(axis=0))
    idx = worst_classes(curves, 0.3)
    assert len(idx) == 3
    np.testing.assert_allclose(segments(worst.y, k), curves.utility[idx], rtol=1e-6, atol=1e-7)
    assert list(dict.fromkeys(worst.customdata)) == list(curves.classes[idx])
    assert "%{customdata}" in worst.hovertemplate and worst.text is None  # integer names: binary
    assert everyone.line.color.startswith("rgba(255,127,14,")  # semi-transparent run color
    assert everyone.hovertemplate and len(everyone.customdata) == len(everyone.y)  # <= 500 classes
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert f"OPIS {opis(curves):.4g}" in texts and f"30%-OPIS {eps_opis(curves, 0.3):.4g}" in texts
    assert "FAR band [0.001, 0.1]" in texts
    (rect,) = fig.layout.shapes
    assert (rect.x0, rect.x1) == (curves.t_min, curves.t_max)


def test_hover_names_classes_by_string_or_binary_integer(six_points):
    x, y = six_points
    named = utility_curves(x, np.array(["cat", "dog", "emu"])[y], distance_range=(0.3, 1.5), num_thresholds=5)
    worst = by_name(utility_figure(named), "worst")
    assert set(worst.text) == {"dog"} and "%{text}" in worst.hovertemplate and worst.customdata is None
    big = utility_curves(x, y + 3_000_000_000, distance_range=(0.3, 1.5), num_thresholds=5)  # beyond int32
    assert set(by_name(utility_figure(big), "worst").text) == {"3000000001"}
    sent = json.loads(utility_figure(utility_curves(x, y, distance_range=(0.3, 1.5), num_thresholds=5)).to_json())
    (cloud,) = [t for t in sent["data"] if t["name"].startswith("all")]
    assert cloud["customdata"]["dtype"] == "i4" and "bdata" in cloud["customdata"]  # binary, not a list


def test_bad_eps_is_a_project_error(six_curves):
    with pytest.raises(TCMError, match="eps"):
        utility_figure(six_curves, eps=0.9)


def test_pair_figure_shares_axes(runs):
    base, tcm = runs[0][3], runs[1][3]
    fig = utility_pair_figure(base, tcm, eps=0.1)
    assert len(fig.data) == 6
    assert [t.xaxis for t in fig.data] == ["x"] * 3 + ["x2"] * 3
    assert fig.layout.xaxis2.matches == "x" and fig.layout.yaxis2.matches == "y"
    lo, hi = fig.layout.xaxis.range
    assert tuple(fig.layout.xaxis2.range) == (lo, hi)
    assert lo < min(base.t_min, tcm.t_min) and hi > max(base.t_max, tcm.t_max)
    assert tuple(fig.layout.yaxis.range) == tuple(fig.layout.yaxis2.range) == (0.0, 1.02)
    rects = sorted((s.xref, s.x0, s.x1) for s in fig.layout.shapes)
    assert rects == [("x", base.t_min, base.t_max), ("x2", tcm.t_min, tcm.t_max)]
    assert [a.text for a in fig.layout.annotations[:2]] == ["Baseline", "+TCM"]
    np.testing.assert_allclose(segments(fig.data[3].y, tcm.num_thresholds), tcm.utility,
                               rtol=1e-6, atol=1e-7)
    assert sum(bool(t.showlegend is not False) for t in fig.data) == 4  # mean/worst once
    parsed = json.loads(fig.to_json())
    assert len(parsed["data"]) == 6


def test_two_thousand_classes_is_one_fast_trace():
    curves = synthetic_curves(2000)
    utility_figure(synthetic_curves(10, 5))  # warm-up: plotly's lazy imports and validators
    start = time.perf_counter()
    fig = utility_figure(curves)
    pair = utility_pair_figure(curves, curves)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"two figures with 2000 classes took {elapsed:.2f} s"
    everyone = by_name(fig, "all 2000 classes")
    assert len(fig.data) == 3 and len(pair.data) == 6
    assert everyone.hoverinfo == "skip" and everyone.text is None and everyone.customdata is None
    cols = display_columns(201, 2000)  # 2000 x 201 points exceed the cloud's budget: thinned
    assert 1 < cols.size < 201 and cols[0] == 0 and cols[-1] == 200
    assert everyone.y.size == 2000 * cols.size + 1999 <= MAX_CLOUD_POINTS + 1999
    np.testing.assert_allclose(segments(everyone.y, cols.size)[[0, 1234, 1999]],
                               curves.utility[[0, 1234, 1999]][:, cols], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(segments(everyone.x, cols.size)[0], curves.thresholds[cols], rtol=1e-6)
    worst, wcols = by_name(fig, "worst"), display_columns(201, 200, MAX_WORST_POINTS)  # the worst 10%: thinned too
    assert 1 < wcols.size < 201 and len(worst.customdata) == 200 * (wcols.size + 1) - 1 <= MAX_WORST_POINTS + 199
    np.testing.assert_allclose(segments(worst.y, wcols.size), curves.utility[worst_classes(curves, 0.1)][:, wcols],
                               rtol=1e-6, atol=1e-7)
    start = time.perf_counter()
    fig.to_json()
    assert time.perf_counter() - start < 1.0


# ---- history_figure -------------------------------------------------------------------------

HISTORY = {
    "baseline": [{"epoch": 1, "loss": 1.0, "recall_at_1": 0.50, "opis": 0.20},
                 {"epoch": 2, "loss": 0.8, "recall_at_1": 0.55, "opis": 0.18}],
    "tcm": [{"epoch": 1, "loss": 1.2, "recall_at_1": 0.52, "opis": 0.12},
            {"epoch": 2, "loss": 0.9, "recall_at_1": 0.57, "opis": None}],
}


def test_history_one_trace_per_run_per_metric():
    fig = history_figure(HISTORY)
    assert len(fig.data) == 6
    got = {(t.name, t.xaxis): (tuple(t.x), tuple(t.y), t.line.color) for t in fig.data}
    assert got[("baseline", "x")] == ((1, 2), (1.0, 0.8), "#1f77b4")
    assert got[("baseline", "x2")] == ((1, 2), (0.50, 0.55), "#1f77b4")
    assert got[("tcm", "x3")] == ((1, 2), (0.12, None), "#ff7f0e")
    assert [t.showlegend for t in fig.data] == [True, False, False] * 2
    assert all(t.mode == "lines+markers" for t in fig.data)
    assert [a.text for a in fig.layout.annotations] == ["loss", "R@1", "OPIS (lower is better)"]


def test_history_edge_cases():
    fig = history_figure({"baseline": [], "other": [{"epoch": 3, "opis": 0.5}], "more": []},
                         metrics=("opis",))
    assert [(t.name, tuple(t.x), tuple(t.y)) for t in fig.data] == [
        ("baseline", (), ()), ("other", (3,), (0.5,)), ("more", (), ())]
    assert len({t.line.color for t in fig.data}) == 3  # others get distinct defaults
    empty = history_figure({})
    assert len(empty.data) == 0 and "no epochs" in empty.layout.annotations[-1].text
    json.loads(empty.to_json())
    with pytest.raises(TCMError):
        history_figure(HISTORY, metrics=())


# ---- class_rates / class_table --------------------------------------------------------------

def direct_rates(x, y, t):
    """Slow reference: all unordered pairs of the normalized embeddings, counted per class."""
    e = x / np.linalg.norm(x, axis=1, keepdims=True)
    a, b = np.triu_indices(len(y), 1)
    d = np.linalg.norm(e[a] - e[b], axis=1)
    out = {}
    for c in np.unique(y):
        pos = (y[a] == c) & (y[b] == c)
        neg = (y[a] == c) != (y[b] == c)
        frr = np.mean(d[pos] > t) if pos.any() else math.nan
        out[c] = (np.mean(d[neg] <= t), frr, int((y == c).sum()))
    return out


@pytest.mark.parametrize("t", [0.6, 0.9, 1.2])
def test_class_rates_match_direct_count(runs, t):
    x, y, hist, _ = runs[0]
    rates = class_rates(hist, t)
    ref = direct_rates(x, y, t)
    assert list(rates.columns) == ["size", "FAR", "FRR"] and rates.index.name == "class"
    assert list(rates.index) == sorted(ref)
    for c, (far, frr, size) in ref.items():
        assert rates.loc[c, "size"] == size
        assert rates.loc[c, "FAR"] == pytest.approx(far, abs=1e-3)
        assert rates.loc[c, "FRR"] == pytest.approx(frr, abs=1e-3)
    assert 0 < rates["FAR"].mean() < 1 and 0 < rates["FRR"].mean() < 1


def test_class_rates_leaves_out_singletons_and_checks_threshold(six_points):
    x, y = six_points
    y = np.array([0, 0, 1, 1, 2, 3])  # classes 2 and 3 are singletons
    rates = class_rates(distance_histograms(x, y), 1.0)
    assert list(rates.index) == [0, 1]
    # class 0's one positive pair, 0° to 40°, has d = 2 sin(20°) = 0.684 <= 1: FRR 0
    ref = direct_rates(x, y, 1.0)
    assert rates.loc[0, "FRR"] == pytest.approx(ref[0][1], abs=1e-9) == 0.0
    assert rates.loc[0, "FAR"] == pytest.approx(ref[0][0], abs=1e-3)
    for bad in (-0.1, 2.5, float("nan"), "x"):
        with pytest.raises(TCMError, match="threshold"):
            class_rates(distance_histograms(x, y), bad)


def test_class_table_compares_runs(runs):
    _, _, base_hist, base = runs[0]
    x, y, _, _ = runs[1]
    keep = y != 3  # class 3 absent from the TCM run
    tcm_hist = distance_histograms(x[keep], y[keep])
    tcm = tcm_hist.curves()
    table = class_table(base, tcm, base_hist, tcm_hist, 0.9)
    assert list(table.columns) == ["size", "mean U baseline", "mean U +TCM", "Δ mean U",
                                   "FAR baseline", "FAR +TCM", "FRR baseline", "FRR +TCM"]
    assert list(table.index) == [c for c in base.classes if c != 3]
    i_base = {c: i for i, c in enumerate(base.classes)}
    i_tcm = {c: i for i, c in enumerate(tcm.classes)}
    base_rates, tcm_rates = class_rates(base_hist, 0.9), class_rates(tcm_hist, 0.9)
    for c, row in table.iterrows():
        assert row["mean U baseline"] == pytest.approx(base.utility[i_base[c]].mean())
        assert row["mean U +TCM"] == pytest.approx(tcm.utility[i_tcm[c]].mean())
        assert row["Δ mean U"] == pytest.approx(row["mean U +TCM"] - row["mean U baseline"])
        assert row["FAR +TCM"] == tcm_rates.loc[c, "FAR"]
        assert row["FRR baseline"] == base_rates.loc[c, "FRR"]
        assert row["size"] == base_rates.loc[c, "size"]
    assert table.drop(columns="size").dtypes.map(lambda d: d.kind == "f").all()


# ---- summary --------------------------------------------------------------------------------

def test_relative_change_signs_and_colors():
    def opis_change(base, tcm):
        return relative_change(base, tcm), change_color(base, tcm)

    assert opis_change(0.2, 0.1) == (pytest.approx(-50.0), "green")
    assert opis_change(0.1, 0.25) == (pytest.approx(150.0), "red")
    assert opis_change(0.1, 0.1) == (0.0, "gray")
    assert opis_change(0.0, 0.0) == (0.0, "gray")
    for base, tcm in ((0.0, 0.1), (float("nan"), 0.1), (0.1, None)):
        pct, color = opis_change(base, tcm)
        assert math.isnan(pct) and color == "gray"
    assert points_change(0.80, 0.825) == pytest.approx(2.5)
    assert change_color(0.80, 0.825, lower_is_better=False) == "green"


def test_format_metric():
    assert format_metric(0.0123456, "opis") == "0.01235"
    assert format_metric(0.8532, "recall") == "85.3%"
    assert format_metric(-42.04, "change") == "−42.0%"
    assert format_metric(12.0, "change") == "+12.0%"
    assert format_metric(None, "opis") == format_metric(float("nan"), "loss") == "—"
    with pytest.raises(TCMError, match="valid kinds"):
        format_metric(1.0, "nope")


def test_streamlit_sends_the_same_figure_through_orjson(runs):
    """``st.plotly_chart`` serializes with plotly's default engine, orjson when installed (pinned:
    a third of a 1,000-class slider move's JSON time); it must send what the json engine sends."""
    import plotly.io as pio

    fig = utility_pair_figure(runs[0][3], runs[1][3])
    import orjson  # noqa: F401  (installed from requirements.txt, so "auto" picks it)

    assert pio.json.config.default_engine == "auto"
    assert json.loads(pio.to_json(fig, engine="orjson")) == json.loads(pio.to_json(fig, engine="json"))
