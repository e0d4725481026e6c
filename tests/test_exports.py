"""tcm_core.viz.export and viz.report: CSV that reads back exactly, PNG / SVG drawn by plotly.js in
headless Chromium at the size asked for, and a pair's HTML report that opens from a file:// URL
with the network shut and draws its figures. Chromium is Debian's (``TCM_CHROMIUM``); in CI a
missing browser fails (conftest)."""

import io
import re
import threading
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from conftest import _browser_or_fail, clustered

import reference
from tcm_core.cli import main
from tcm_core.errors import TCMError
from tcm_core.metrics import EvalSettings, distance_histograms, utility_curves
from tcm_core.training import TrainConfig
from tcm_core.training.runs import save_config, save_metrics, save_run_embeddings
from tcm_core.viz import class_table, format_metric, utility_pair_figure
from tcm_core.viz.export import FigureRenderer, table_csv
from tcm_core.viz.report import build_pair_report, report_html

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SETTINGS = EvalSettings(num_thresholds=51)  # K=51 keeps the slow reference quick


def toy_runs():
    """A baseline and a tighter +TCM twin: 240 3-D embeddings each, 10 classes."""
    (bx, by), (tx, ty) = clustered(1, n=240, dim=3), clustered(1, n=240, dim=3, spread=(0.2, 0.8))
    return (bx.astype(np.float32), by), (tx.astype(np.float32), ty)


def write_toy_pair(root):
    """``toy_runs`` saved as the pair folder ``root`` (what training writes, minus checkpoints)."""
    for side, (x, y), r1 in (("baseline", toy_runs()[0], 0.8), ("tcm", toy_runs()[1], 0.85)):
        run = root / side
        run.mkdir(parents=True)
        save_config(run, TrainConfig(dataset="digits", embedding_dim=3, tcm=side == "tcm", eval=SETTINGS))
        save_run_embeddings(run, x, y)
        save_metrics(run, {"recall_at_1": r1, "map_at_r": r1 - 0.2, "opis": 0.01, "history": []})
    return root


@pytest.fixture(scope="module")
def runs_xy():
    return toy_runs()


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory):
    return write_toy_pair(tmp_path_factory.mktemp("pair") / "toy-pair")


@pytest.fixture(scope="module")
def curves_and_table(runs_xy):
    (bx, by), (tx, ty) = runs_xy
    base, tcm = utility_curves(bx, by), utility_curves(tx, ty)
    return base, tcm, class_table(base, tcm, distance_histograms(bx, by), distance_histograms(tx, ty), 0.8)


@pytest.fixture(scope="module")
def renderer():
    _browser_or_fail()
    r = FigureRenderer()
    yield r
    r.close()


def test_table_csv_reads_back_exactly(curves_and_table):
    table = curves_and_table[2]
    back = pd.read_csv(io.BytesIO(table_csv(table)), index_col="class")
    assert list(back.columns) == list(table.columns) and back.index.name == "class"
    pd.testing.assert_frame_equal(back, table, check_exact=True, check_index_type=False)
    plain = pd.DataFrame({"a": [1.5, np.pi], "b": ["x", "y,z"]})  # a RangeIndex is not written
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(table_csv(plain))), plain, check_exact=True)


def test_png_and_svg_at_the_requested_size(renderer, curves_and_table):
    from PIL import Image

    fig = utility_pair_figure(*curves_and_table[:2])  # WebGL traces: Chromium must draw them
    png = renderer.render(fig, "png", width=800, height=450, scale=2)
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (1600, 900)
    pixels = np.asarray(image).reshape(-1, 3).astype(int)
    assert (np.abs(pixels - [0x11, 0x11, 0x11]).max(axis=1) < 12).sum() > 500  # the thick mean line Ū(d)
    assert (np.abs(pixels - [0xD6, 0x27, 0x28]).max(axis=1) < 20).sum() > 100  # the worst class, red

    svg = renderer.render(fig, "svg")  # presentation size by default
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert (root.get("width"), root.get("height")) == ("1280", "720")
    assert "threshold distance d" in svg.decode()  # the axis title is text, not pixels


def test_one_browser_serves_threads(renderer, curves_and_table):
    fig = utility_pair_figure(*curves_and_table[:2])
    results = [None] * 3

    def draw(i):
        results[i] = renderer.render(fig, "png", width=400, height=300, scale=1)

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None and r.startswith(PNG_SIGNATURE) for r in results)
    assert sum(t.name == "tcm-figure-renderer" for t in threading.enumerate()) == 1


def test_two_spheres_without_ghosts(renderer, runs_xy):
    """The second of two 3-D scenes must not show the first scene's points (plotly.js's toImage
    in software WebGL does: the reason 3-D pairs are screenshotted live)."""
    import plotly.graph_objects as go
    from PIL import Image

    from tcm_core.viz.sphere import sphere_pair_figure

    full = sphere_pair_figure(*runs_xy[0], *runs_xy[1], grid=40).update_layout(showlegend=False)
    bare = go.Figure(full)  # the same, without the baseline's points
    bare.data = [t for t in bare.data if not (t.type == "scatter3d" and t.mode == "markers" and t.scene == "scene")]
    assert len(bare.data) == len(full.data) - 10
    images = [np.asarray(Image.open(io.BytesIO(renderer.render(f, "png", width=800, height=400, scale=1)))
                         .convert("RGB")).astype(int) for f in (full, bare)]
    moved = np.abs(images[0] - images[1]).max(axis=2) > 40
    assert moved[:, :400].sum() > 100  # the baseline's points are drawn in the first scene ...
    assert moved[:, 400:].sum() == 0  # ... and nowhere in the second
    svg = ET.fromstring(renderer.render(full, "svg", width=800, height=400))
    assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.get("width") == "800"


def test_bad_requests_say_what_is_wrong(curves_and_table):
    fig = utility_pair_figure(*curves_and_table[:2])
    with pytest.raises(TCMError, match="format must be one of png, svg"):
        FigureRenderer().render(fig, "jpg")
    with pytest.raises(TCMError, match="width and height"):
        FigureRenderer().render(fig, "png", width=0)
    with pytest.raises(TCMError, match="needs Chromium"):
        FigureRenderer(executable="/nonexistent/chromium").render(fig, "svg")


def test_report_numbers_follow_the_reference(pair_dir, runs_xy):
    report = build_pair_report(pair_dir)
    rows = report.numbers.set_index("metric")
    for (x, y), column in zip(runs_xy, ("baseline", "+TCM")):  # from histograms: within 0.1% of exact
        ref = reference.evaluate(x, y, k=SETTINGS.num_thresholds)
        assert rows.loc["OPIS", column] == pytest.approx(ref["opis"], rel=2e-3)
        assert rows.loc["0.1-OPIS", column] == pytest.approx(ref["eps_opis"], rel=2e-3)
    assert rows.loc["R@1", "baseline"] == 0.8 and rows.loc["MAP@R", "change"] == "+5.0 pts (no interval)"
    assert re.fullmatch(r"[+−]\d+\.\d% \(95% CI [+−]\d+\.\d% … [+−]\d+\.\d%\)(, within noise)?", rows.loc["OPIS", "change"])
    assert len(report.classes) == 10 and report.threshold == pytest.approx(  # within 2 histogram bins
        np.mean(reference.calibration_range(*runs_xy[0])), abs=2 * 2 / 16384)
    assert set(report.figures) >= {"Per-class utility curves", "Embeddings"}
    assert report.configs[1]["tcm"] is True and report.versions["plotly"]


def test_report_html_is_self_contained(pair_dir):
    from plotly.offline import get_plotlyjs

    report = build_pair_report(pair_dir)
    text = report_html(report)
    opis = report.numbers.set_index("metric").loc["OPIS"]
    assert f"<td>{format_metric(opis['baseline'], 'opis')}</td><td>{format_metric(opis['+TCM'], 'opis')}</td>" in text
    assert text.count(get_plotlyjs()) == 1  # plotly.js inlined, once
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)  # nothing loaded from anywhere
    assert not re.search(r"<link[^>]*\bhref\s*=\s*['\"]?https?:", text, re.I)
    assert text.count('class="plotly-graph-div"') == 3  # utility curves, margins, sphere (no history)


def test_report_opens_offline_and_draws(pair_dir, tmp_path):
    _browser_or_fail()
    from conftest import CHROMIUM
    from playwright.sync_api import sync_playwright

    out = tmp_path / "report.html"
    assert main(["report", str(pair_dir), "--out", str(out), "--num-thresholds", "51"]) == 0
    requested, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(offline=True).new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:")
                       else (requested.append(r.request.url), r.abort()))
            page.goto(out.as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length === 3", timeout=60_000)
            assert page.locator(".js-plotly-plot svg.main-svg").count() >= 3
            assert page.locator(".js-plotly-plot text", has_text="threshold distance d").count() == 2  # both panels
            assert page.get_by_text("OPIS", exact=True).count() == 1
        finally:
            browser.close()
    assert requested == [] and errors == []


def test_report_cli_writes_csv_and_rejects_a_non_pair(pair_dir, tmp_path, capsys):
    csv = tmp_path / "classes.csv"
    assert main(["report", str(pair_dir), "--out", str(tmp_path / "r.html"), "--csv", str(csv),
                 "--threshold", "0.7", "--num-thresholds", "51"]) == 0
    back = pd.read_csv(csv, index_col="class")
    assert len(back) == 10 and list(back.columns)[:2] == ["size", "mean U baseline"]
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not a pair folder" in err and "\n" not in err
