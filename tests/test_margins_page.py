"""AppTest of the margins page: sliders move the histogram and the penalized shares; a tiny
sweep on a digits pair completes and its best margins reach the Train page's defaults."""

import json

from streamlit.testing.v1 import AppTest

from tcm_core.training import TrainConfig, train

APP = "/work/main/app.py"


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
    assert "Positives penalized (s ≤ m⁺)" in before
    at.slider(key="mg_pos").set_value(0.6).run()
    at.slider(key="mg_neg").set_value(0.2).run()
    after, fig2 = shares(at), spec(at)
    assert not at.exception
    assert float(after["Positives penalized (s ≤ m⁺)"].rstrip("%")) < float(before["Positives penalized (s ≤ m⁺)"].rstrip("%"))
    assert float(after["Negatives penalized (s ≥ m⁻)"].rstrip("%")) > float(before["Negatives penalized (s ≥ m⁻)"].rstrip("%"))
    assert after["L_TCM on all test pairs"] != before["L_TCM on all test pairs"]
    xs = lambda f: sorted(round(s["x0"], 2) for s in f["layout"]["shapes"] if s["type"] == "line")  # noqa: E731
    assert xs(fig) == [0.5, 0.9] and xs(fig2) == [0.2, 0.6]


def test_sweep_on_a_digits_pair(tmp_path, monkeypatch):
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    train(TrainConfig(dataset="digits", epochs=1, batch_size=32, samples_per_class=4, embedding_dim=8,
                      loss="multi_similarity", device="cpu"), tmp_path / "pair", compare=True)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.session_state["pair_label"] = "pair"
    at.switch_page("pages/margins.py").run()
    at.multiselect(key="sw_pos").set_value([0.8, 0.9])
    at.multiselect(key="sw_neg").set_value([0.4])
    at.button[[b.label for b in at.button].index("Start sweep")].click().run()
    assert not at.exception
    assert at.session_state["sweep"].wait(120)
    at.run()
    assert not at.exception
    snap = at.session_state["sweep"].snapshot()
    assert snap.status == "finished" and len(snap.results) == 2
    heat = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert [t["type"] for t in heat["data"]].count("heatmap") == 2
    at.button[[b.label for b in at.button].index("Send best margins to the Train page")].click().run()
    best = at.session_state["suggested_margins"]
    assert best in [(0.8, 0.4), (0.9, 0.4)]
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert (at.slider[0].value, at.slider[1].value) == best
