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
    assert {"OPIS baseline", "OPIS +TCM", "0.1-OPIS baseline", "R@1 baseline"} <= set(before)
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
    assert len(at.dataframe[-1].value) >= 10  # the per-class table: one row per class


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
    picker = [s for s in home.sidebar.selectbox if s.label.startswith("Run (")][0]
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


def _deltas(at):
    return {m.label: m.proto.delta for m in at.metric}


def _notes(at):
    """The interval lines written under the +TCM metrics, in page order."""
    return [c.value for c in at.caption if "95% CI" in c.value or c.value.startswith("no interval")]


def test_identical_runs_read_within_noise(tmp_path, monkeypatch):
    """A pair whose +TCM run is a copy of its baseline: every change is 0 with a degenerate
    interval, written 'within noise' and not colored (the app never paints noise)."""
    import shutil

    src = ROOT / "assets" / "examples" / "cub100-ms-128d"
    first = sorted(p for p in src.iterdir() if (p / "baseline").is_dir())[0] if not (src / "baseline").is_dir() else src
    shutil.copytree(first / "baseline", tmp_path / "same" / "baseline")
    shutil.copytree(first / "baseline", tmp_path / "same" / "tcm")
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.session_state["pair_label"] = "same"
    at.switch_page("pages/threshold.py").run()
    assert not at.exception
    deltas = _deltas(at)
    assert [deltas[k] for k in ("OPIS +TCM", "0.1-OPIS +TCM", "R@1 +TCM")] == ["+0.0%", "+0.0%", "+0.0 pts"]
    notes = _notes(at)
    assert len(notes) == 3 and all(n.endswith("within noise") for n in notes), notes
    assert all(m.proto.color == 2 for m in at.metric if m.label.endswith("+TCM"))  # GRAY: not colored
    assert any("paired bootstrap over" in c.value for c in at.caption)


def test_repeats_show_intervals_across_seeds():
    """The shipped MNIST example holds 3 seeds: the threshold page's changes are the mean over
    seeds with a t interval, 'within noise' (and gray) exactly when that interval, recomputed
    here from the per-seed metrics, contains zero, green or red by the sign otherwise."""
    from scipy import stats

    from tcm_core.training.repeats import load_summary

    summary = load_summary(ROOT / "assets" / "examples" / "mnist-arcface-3d")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["pair_label"] = "example: mnist-arcface-3d"
    at.run()  # AppTest sees the sidebar (drawn by app.py) on the first run only
    assert [s for s in at.sidebar.selectbox if s.label.startswith("Seed")][0].options == ["0", "1", "2"]
    at.switch_page("pages/threshold.py").run()
    assert not at.exception
    recall = [100 * (r["tcm"]["recall_at_1"] - r["baseline"]["recall_at_1"]) for r in summary["per_seed"]]
    low, high = stats.t.interval(0.95, df=len(recall) - 1, loc=sum(recall) / len(recall), scale=stats.sem(recall))
    notes = _notes(at)
    assert len(notes) == 3 and notes[2].endswith("within noise") == (low <= 0 <= high)
    r1 = next(m for m in at.metric if m.label == "R@1 +TCM")
    assert r1.proto.color == (2 if low <= 0 <= high else 1 if low > 0 else 0)  # GRAY / GREEN / RED
    assert r1.proto.delta.startswith("-") == (sum(recall) < 0)  # an ASCII sign: st.metric reads it
    assert any("t over 3 seeds" in c.value for c in at.caption)


def test_run_folders_written_before_validation_still_load(tmp_path, monkeypatch):
    """A pair in the earlier format (flat eval_* config fields, no validation metrics or
    embeddings) opens on the threshold and margins pages; the margins page says what is missing."""
    import shutil

    src = ROOT / "assets" / "examples" / "cub100-ms-128d"
    first = sorted(p for p in src.iterdir() if (p / "baseline").is_dir())[0] if not (src / "baseline").is_dir() else src
    for side in ("baseline", "tcm"):
        run = tmp_path / "old" / side
        shutil.copytree(first / side, run)
        (run / "val_embeddings.npz").unlink(missing_ok=True)
        config = json.loads((run / "config.json").read_text())
        ev = config.pop("eval")  # back to the flat fields of the earlier format
        config.update(eval_far_range=ev["far_range"], eval_num_thresholds=ev["num_thresholds"],
                      eval_beta=ev["beta"], eval_eps=ev["eps"])
        (run / "config.json").write_text(json.dumps(config))
        metrics = json.loads((run / "metrics.json").read_text())
        metrics.pop("validation", None)
        for record in metrics["history"]:
            for key in [k for k in record if k.startswith("val_")]:
                record.pop(key)
        (run / "metrics.json").write_text(json.dumps(metrics))
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.session_state["pair_label"] = "old"
    at.switch_page("pages/threshold.py").run()
    assert not at.exception and "OPIS baseline" in _deltas(at)
    at.switch_page("pages/margins.py").run()
    assert not at.exception
    assert any("before validation splits existed" in i.value for i in at.info)
