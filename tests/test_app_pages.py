"""AppTests of every page: renders without exception, main widgets work (real runs and data)."""

import json

from streamlit.testing.v1 import AppTest

from conftest import ROOT

APP = str(ROOT / "app.py")


def page(name, **env):
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page(f"pages/{name}.py")
    return at.run()


def metric_values(at):
    return {m.label: m.value for m in at.metric}


def plotly_specs(at):
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_home_explains_and_shows_the_example():
    at = AppTest.from_file(APP, default_timeout=90).run()
    assert not at.exception
    assert at.title[0].value == "TCM Explorer"
    assert "threshold inconsistency" in at.markdown[0].value
    spec = plotly_specs(at)[0]
    assert any(t.get("name", "").startswith("mean") for t in spec["data"])
    assert any("Datasets there" in c.value for c in at.sidebar.caption)


def test_threshold_page_sliders_move_opis():
    at = page("threshold")
    assert not at.exception
    before = metric_values(at)
    assert {"OPIS baseline", "OPIS + TCM", "0.1-OPIS baseline", "R@1 baseline"} <= set(before)
    assert float(before["OPIS baseline"]) > 0
    at.select_slider(key="far_band").set_value((1e-2, 0.5)).run()
    assert not at.exception
    after = metric_values(at)
    assert after["OPIS baseline"] != before["OPIS baseline"]
    at.slider(key="beta").set_value(2.0).run()
    assert metric_values(at)["OPIS baseline"] != after["OPIS baseline"]
    at.slider(key="eps").set_value(0.3).run()
    assert "0.3-OPIS baseline" in metric_values(at)
    at.radio(key="range_mode").set_value("distance").run()
    assert not at.exception and at.slider(key="dist_range").value[0] < at.slider(key="dist_range").value[1]
    spec = plotly_specs(at)[0]
    assert spec["layout"]["xaxis"]["matches"] if "matches" in spec["layout"]["xaxis"] else True
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) >= 10  # one row per class


def test_train_page_trains_a_pair(tmp_path, monkeypatch):
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    at = page("train")
    assert not at.exception
    at.selectbox(key="dataset").set_value("digits")
    at.selectbox(key="loss").set_value("multi_similarity")
    at.number_input(key="dim").set_value(8)
    at.number_input(key="epochs").set_value(2)
    at.number_input(key="max_train").set_value(600)
    at.number_input(key="batch").set_value(32)
    at.number_input(key="per_class").set_value(4)
    at.selectbox(key="device").set_value("cpu")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception
    from pages._common import job_manager

    job = job_manager().get(at.session_state["job_id"])
    assert job.wait(120)
    at.run()  # the progress fragment sees "finished" and reruns the app once (new run picker entry)
    at.run()
    assert not at.exception
    assert any("finished" in s.value for s in at.subheader)
    pair = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(pair) == 1 and (pair[0] / "tcm" / "metrics.json").is_file()
    home = AppTest.from_file(APP, default_timeout=90).run()  # the frame draws the sidebar
    picker = [s for s in home.sidebar.selectbox if s.label.startswith("Run pair")][0]
    assert pair[0].name in picker.options  # the run picker every page shares lists the new pair


def test_train_page_bad_input_shows_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    at = page("train")
    at.selectbox(key="dataset").set_value("folder")
    at.text_input(key="data_dir").set_value("/nonexistent/birds")
    at.button[0].click().run()
    from pages._common import job_manager

    job_manager().get(at.session_state["job_id"]).wait(60)
    at.run()
    assert not at.exception
    assert any("/nonexistent/birds" in e.value for e in at.error)
