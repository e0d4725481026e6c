"""AppTest of the margins page: sliders move the histogram and the penalized shares; a tiny grid
search (Optuna) on a digits pair completes, its best margins reach the Train page's defaults, a
trial loads into the sidebar's picker, and the re-check with 3 seeds shows its interval."""

import json

from streamlit.testing.v1 import AppTest

from conftest import ROOT
from tcm_core.training import TrainConfig, train

APP = str(ROOT / "app.py")


def shares(at):
    return {m.label: m.value for m in at.metric}


def spec(at):
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_sliders_move_the_histogram_and_shares():
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.session_state["pair_label"] = "example: mnist-arcface-3d"
    at.switch_page("pages/margins.py").run()
    assert not at.exception and at.title[0].value == "Tune TCM margins"
    before, fig = shares(at), spec(at)
    assert "validation pairs" in fig["layout"]["title"]["text"]  # margins are chosen on validation, not test
    assert "Positives penalized (s ≤ m⁺)" in before
    at.slider(key="mg_pos").set_value(0.6).run()
    at.slider(key="mg_neg").set_value(0.2).run()
    after, fig2 = shares(at), spec(at)
    assert not at.exception
    assert float(after["Positives penalized (s ≤ m⁺)"].rstrip("%")) < float(before["Positives penalized (s ≤ m⁺)"].rstrip("%"))
    assert float(after["Negatives penalized (s ≥ m⁻)"].rstrip("%")) > float(before["Negatives penalized (s ≥ m⁻)"].rstrip("%"))
    assert after["L_TCM on all pairs"] != before["L_TCM on all pairs"]
    xs = lambda f: sorted(round(s["x0"], 2) for s in f["layout"]["shapes"] if s["type"] == "line")  # noqa: E731
    assert xs(fig) == [0.5, 0.9] and xs(fig2) == [0.2, 0.6]
    at.radio(key="tn_sampler").set_value("tpe").run()  # TPE: ranges and a trial count instead of a grid
    assert not at.exception and at.slider(key="tn_pos_range").value == (0.6, 0.95)
    assert at.number_input(key="tn_trials").value == 20


def click(at, label):
    return at.button[[b.label for b in at.button].index(label)].click().run()


def test_search_on_a_digits_pair(tmp_path, monkeypatch):
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    train(TrainConfig(dataset="digits", epochs=1, batch_size=32, samples_per_class=4, embedding_dim=8,
                      loss="multi_similarity", device="cpu"), tmp_path / "pair", compare=True)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.session_state["pair_label"] = "pair"
    at.switch_page("pages/margins.py").run()
    assert not at.exception and "Margin search (Optuna)" in [h.value for h in at.subheader]
    at.multiselect(key="tn_pos").set_value([0.8, 0.9])
    at.multiselect(key="tn_neg").set_value([0.4])
    click(at, "Start search")
    assert not at.exception
    task = at.session_state["tune_task"]
    assert task.wait(180)
    at.run()
    assert not at.exception
    snap = task.snapshot()
    assert snap.status == "finished" and snap.progress.done == 2 and snap.fraction == 1.0
    pareto, heat = (json.loads(c.proto.spec) for c in at.get("plotly_chart")[1:3])
    assert "Pareto front" in [t["name"] for t in pareto["data"]]
    assert [t["type"] for t in heat["data"]].count("heatmap") == 2
    # the best margins reach the Train page's sliders
    click(at, "Send best margins to the Train page")
    best = at.session_state["suggested_margins"]
    assert best in [(0.8, 0.4), (0.9, 0.4)]
    # any trial loads into the sidebar's picker
    trial = next(t for t in snap.progress.trials if (t.margin_pos, t.margin_neg) != best)
    at.selectbox(key="tn_trial").set_value(trial.number).run()
    click(at, "Load in the sidebar")
    assert not at.exception
    label = f"{task.out.name}-trial-{trial.number}"
    assert at.session_state["pair_label"] == label
    home = AppTest.from_file(APP, default_timeout=120)  # AppTest draws no sidebar after switch_page
    home.session_state["pair_label"] = label
    picker = [s for s in home.run().sidebar.selectbox if s.label.startswith("Run (")][0]
    assert picker.value == label
    # re-check the picked margins on the test classes with 3 seeds
    click(at, "Re-check on test classes with 3 seeds")
    check = at.session_state["recheck_task"]
    assert check.wait(240)
    at.run()
    assert not at.exception and check.snapshot().status == "finished"
    metrics = {m.label: m for m in at.metric}
    assert "Test OPIS +TCM" in metrics and "t over 3 seeds" in metrics["Test OPIS +TCM"].help
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert (at.slider[0].value, at.slider[1].value) == best
