"""The app as a new user tries to break it: a damaged run folder in the runs folder (one clear
message naming it, the picker keeps the other runs, no traceback), and range sliders whose two
thumbs meet (the page keeps its figures and says why)."""

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT

APP = str(ROOT / "app.py")
EXAMPLE = ROOT / "assets" / "examples" / "mnist-arcface-3d" / "seed-0"


@pytest.fixture
def runs_with_damage(tmp_path, monkeypatch):
    for name in ("good-pair", "cut-pair", "no-embeddings"):
        shutil.copytree(EXAMPLE, tmp_path / name)
    metrics = tmp_path / "cut-pair" / "tcm" / "metrics.json"
    metrics.write_text(metrics.read_text()[:200])  # a full disk, an interrupted copy
    (tmp_path / "no-embeddings" / "baseline" / "embeddings.npz").unlink()
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("page", ["threshold", "margins", "sphere"])
@pytest.mark.parametrize("damaged,needle", [("cut-pair", "metrics.json cannot be read"),
                                            ("no-embeddings", "has no embeddings.npz")])
def test_damaged_run_folder_one_message(runs_with_damage, page, damaged, needle):
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["pair_label"] = damaged
    at.run()
    options = at.sidebar.selectbox[0].options
    assert "good-pair" in options and damaged in options  # the picker keeps offering the others
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and damaged in errors[0] and needle in errors[0], errors
    assert str(runs_with_damage) not in errors[0]  # no server paths shown
    at.session_state["pair_label"] = "good-pair"
    at.run()
    assert not at.exception and not at.error


def test_range_thumbs_meeting_keep_the_page(monkeypatch, tmp_path):
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/threshold.py").run()
    before = {m.label: m.value for m in at.metric}
    at.select_slider(key="far_band").set_value((0.1, 0.1)).run()
    assert not at.exception and not at.error
    assert any("far_range" in w.value for w in at.warning)
    assert {m.label: m.value for m in at.metric} == before  # the last valid range stays in use
    assert at.get("plotly_chart")
    at.radio(key="range_mode").set_value("distance").run()
    at.slider(key="dist_range").set_value((0.8, 0.8)).run()
    assert not at.exception and not at.error and any("distance_range" in w.value for w in at.warning)
    assert at.get("plotly_chart")


def test_url_state_restores_valid_values_and_ignores_bad_ones(monkeypatch, tmp_path):
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"run": "example: mnist-arcface-3d", "seed": "2", "far": "0.01,0.5", "beta": "2",
                            "eps": "7", "k": "12", "target_far": "nan"})
    at.run()  # a link's page values wait in the URL until that page opens
    at.switch_page("pages/threshold.py").run()
    assert not at.exception and not at.error
    assert at.session_state["pair_label"] == "example: mnist-arcface-3d" and at.session_state["seed"] == 2
    assert at.select_slider(key="far_band").value == (0.01, 0.5) and at.slider(key="beta").value == 2.0
    assert at.slider(key="eps").value == 0.1 and at.select_slider(key="k").value == 201  # out of range: default
    assert at.select_slider(key="target_far").value == 1e-3
    assert at.query_params["far"] in ("0.01,0.5", ["0.01,0.5"]) and at.query_params["beta"] in ("2", ["2"])  # written back


def test_results_page_leaves_a_damaged_pair_out(runs_with_damage):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/results.py").run()
    assert not at.exception and not at.error
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "cut-pair/tcm" in warnings[0]  # (no-embeddings still has its metrics)
    assert "good-pair" in at.dataframe[0].value["source"].tolist()


def test_margin_search_ranges_meeting_keep_the_page(monkeypatch, tmp_path):
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/margins.py").run()
    at.radio(key="tn_sampler").set_value("tpe").run()
    at.slider(key="tn_pos_range").set_value((0.7, 0.7)).run()
    assert not at.exception
    assert at.get("plotly_chart") and {m.label for m in at.metric} >= {"Positives penalized (s ≤ m⁺)"}
    assert len(at.error) <= 1  # at most one message, beside the search settings
