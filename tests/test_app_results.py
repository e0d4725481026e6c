"""AppTests of the Results and Accuracy-vs-consistency pages on a small study in a temporary
runs folder: they render, the filters change the rows, a click on a point loads its cell."""

import json

import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from pages._common import EXAMPLES, PAIR, PICKED_POINT
from tcm_core.experiments.results import results_table
from test_results import make_pair, make_study

APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_pair(root / "plain", loss="arcface", batch=16)
    make_study(root, losses=("multi_similarity", "arcface"), batches=(16, 64), seeds=(0, 1))
    return root


@pytest.fixture
def app(runs_dir, monkeypatch):
    monkeypatch.setenv("TCM_RUNS_DIR", str(runs_dir))

    def open_page(name):
        at = AppTest.from_file(APP, default_timeout=90)
        at.run()
        at.switch_page(f"pages/{name}.py")
        return at.run()
    return open_page


def rows(at):
    return at.dataframe[0].value


def test_results_page_lists_every_comparison_and_filters(app, runs_dir):
    at = app("results")
    assert not at.exception
    assert at.title[0].value == "Results"
    expected = len(results_table(runs_dir)) + len(results_table(EXAMPLES))
    table = rows(at)
    assert len(table) == expected and "demo/arcface-bs64" in set(table["source"])
    assert table.set_index("source").loc["plain", "R@1 baseline"] == results_table(runs_dir).set_index("source").loc[
        "plain", "R@1 baseline"]
    at.multiselect(key="results_loss").set_value(["multi_similarity"]).run()
    assert not at.exception
    assert set(rows(at)["loss"]) == {"multi_similarity"} and len(rows(at)) < expected
    at.multiselect(key="results_kind").set_value(["study"]).run()
    assert list(rows(at)["source"]) == ["demo/multi_similarity-bs16", "demo/multi_similarity-bs64"]
    assert any("2 of" in c.value for c in at.caption)
    assert len(at.get("download_button")) == 3
    at.radio(key="results_split").set_value("validation").run()
    assert not at.exception and len(rows(at)) == 2


def test_accuracy_page_draws_the_study(app):
    at = app("accuracy")
    assert not at.exception
    assert at.selectbox(key="accuracy_study").value == "demo"
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    markers = [t for t in spec["data"] if t["mode"] == "markers"]
    assert {t["marker"]["symbol"] for t in markers} == {"circle", "triangle-up"}
    assert sum(t["mode"] == "lines" for t in spec["data"]) == 4
    at.radio(key="accuracy_split").set_value("validation").run()
    assert not at.exception and "validation" in json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]


def click(at, cell, side="tcm"):
    """Rerun ``at`` as the browser does after a click on the point of ``cell`` (the chart's
    selection state, which AppTest cannot set through its public API)."""
    chart = at.get("plotly_chart")[0].proto
    point = {"curve_number": 4, "point_number": 0, "point_index": 0, "x": 0.01, "y": 0.2,
             "customdata": [cell, side, "arcface", 16, 2, 0.9, 0.5, 1, 1, 0.8]}
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=chart.id, string_value=json.dumps(
        {"selection": {"points": [point], "point_indices": [0], "box": [], "lasso": []}})))
    return at._run(states)


def test_clicking_a_point_loads_its_cell_into_the_run_picker(app):
    at = app("accuracy")
    assert at.session_state[PAIR] != "demo/arcface-bs16"
    click(at, "arcface-bs16")
    assert not at.exception
    assert at.session_state[PAIR] == "demo/arcface-bs16"
    assert at.session_state[PICKED_POINT] == ("demo", "test", "arcface-bs16", "tcm")
    assert any("loaded in the run picker" in s.value for s in at.success)
    assert at.get("page_link")[0].proto.page == "threshold"
    home = AppTest.from_file(APP, default_timeout=90)  # AppTest draws the sidebar on its first page only
    home.session_state[PAIR] = at.session_state[PAIR]
    home.run()
    picker = next(s for s in home.sidebar.selectbox if s.label.startswith("Run ("))
    assert picker.value == "demo/arcface-bs16"
    assert next(s for s in home.sidebar.selectbox if s.label.startswith("Seed")).options == ["0", "1"]
    click(at, "arcface-bs16")  # the same point again: already handled, nothing changes
    assert not at.exception and at.session_state[PAIR] == "demo/arcface-bs16"


def test_accuracy_page_without_a_study_says_so(tmp_path, monkeypatch):
    import pages._common

    monkeypatch.setattr(pages._common, "EXAMPLES", tmp_path / "no-examples")  # the pages import it per run
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("pages/accuracy.py")
    at.run()
    assert not at.exception and any("No study yet" in i.value for i in at.info)


def test_a_study_without_its_table_yet_says_so(tmp_path, monkeypatch):
    (tmp_path / "starting").mkdir()
    (tmp_path / "starting" / "study.json").write_text("{}")
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("pages/accuracy.py")
    at.run()
    assert not at.exception and any("study.csv is missing" in e.value for e in at.error)
