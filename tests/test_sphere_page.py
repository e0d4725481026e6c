"""AppTests of the sphere page: the 3-D example on two spheres (same color range, same camera),
the 128-D example as a projection, a 2-D pair on the circle, and the κ slider repainting."""

import json
import time

import numpy as np
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from tcm_core.training.config import TrainConfig
from tcm_core.training.runs import save_config, save_metrics, save_run_embeddings

APP = str(ROOT / "app.py")


def sphere_page(label):
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.session_state["pair_label"] = label
    return at.switch_page("pages/sphere.py").run()


def chart(at):
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


def surfaces(spec):
    return [t for t in spec["data"] if t["type"] == "surface"]


def test_mnist_example_on_two_spheres_and_kappa_repaints():
    at = sphere_page("example: mnist-arcface-3d")
    assert not at.exception and not at.error
    assert at.title[0].value == "Embeddings on the sphere"
    spec = chart(at)
    a, b = surfaces(spec)
    assert a["cmin"] == b["cmin"] == 0 and a["cmax"] == b["cmax"] > 0
    assert spec["layout"]["scene"]["camera"] == spec["layout"]["scene2"]["camera"]
    assert spec["layout"]["scene"]["aspectmode"] == "cube"
    assert any("unit sphere" in c.value and "10 classes" in c.value for c in at.caption)

    kappa = at.select_slider[0]
    before = kappa.value
    kappa.set_value(5.0 if before != 5.0 else 20.0).run()
    assert not at.exception
    c, d = surfaces(chart(at))
    assert c["surfacecolor"] != a["surfacecolor"] and c["cmax"] != a["cmax"]
    assert c["cmax"] == d["cmax"]

    at.slider(key="sphere_points").set_value(300).run()
    markers = [t for t in chart(at)["data"] if t["type"] == "scatter3d" and t["mode"] == "markers"]
    assert not at.exception and len(markers) == 20  # 10 classes x 2 spheres


def test_cub_example_shows_a_projection():
    at = sphere_page("example: cub100-ms-128d")
    assert not at.exception and not at.error
    spec = chart(at)
    assert {t["type"] for t in spec["data"]} == {"scattergl"}
    assert {"xaxis", "xaxis2"} <= set(spec["layout"])
    assert sum(bool(t.get("showlegend", True)) for t in spec["data"]) == 20  # legend: top 20
    caption = " ".join(c.value for c in at.caption)
    assert ("PCA" in caption or "UMAP" in caption) and "2,953 of 2,953" in caption
    assert any("128 dimensions" in i.value for i in at.info)

    for _ in range(60):  # the background UMAP jobs finish (numba compiles on the first one)
        if "UMAP (cosine" in " ".join(c.value for c in at.caption):
            break
        time.sleep(3)
        at.run()
    assert not at.exception and not at.error
    assert "UMAP (cosine metric, seed 0) of a class-stratified sample" in at.caption[0].value
    assert {t["type"] for t in chart(at)["data"]} == {"scattergl"}


def write_pair(root, seed=0):
    """A 2-D pair: three classes at 0°, 120°, 240°; the +TCM twin tighter."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.array(["a", "b", "c"]), 40)
    center = np.repeat(np.deg2rad([0.0, 120.0, 240.0]), 40)
    for side, spread in (("baseline", 0.35), ("tcm", 0.12)):
        angle = center + spread * rng.normal(size=len(center))
        run = root / "x" / side
        run.mkdir(parents=True)
        save_config(run, TrainConfig(dataset="digits", embedding_dim=2, tcm=side == "tcm"))
        save_run_embeddings(run, np.stack([np.cos(angle), np.sin(angle)], 1).astype(np.float32), labels)
        save_metrics(run, {"n": len(labels), "dim": 2, "opis": 0.001, "recall_at_1": 0.9})


def test_two_dimensional_pair_on_the_circle(tmp_path, monkeypatch):
    write_pair(tmp_path)
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    at = sphere_page("x")
    assert not at.exception and not at.error
    spec = chart(at)
    bands = [t for t in spec["data"] if t.get("fill") == "toself"]
    assert sorted(t["name"] for t in bands) == ["a", "a", "b", "b", "c", "c"]
    assert spec["layout"]["yaxis"]["scaleanchor"] == "x" and spec["layout"]["yaxis2"]["scaleanchor"] == "x2"
    assert any("unit circle" in c.value for c in at.caption)
