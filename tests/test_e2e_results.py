"""End to end in Debian's Chromium (Playwright): the Results and Accuracy-vs-consistency pages on
a small study, a click on a point loading its cell into the run picker; screenshots
tests/_artifacts/results.png and accuracy.png. A server of its own, whose runs folder holds the
study (the shared one's runs folder stays as the other browser tests expect it)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT, SHARED, SHOTS, _browser_or_fail, browser_page
from test_results import make_pair, make_study


@pytest.fixture(scope="module")
def study_server(tmp_path_factory):
    _browser_or_fail()
    runs = tmp_path_factory.mktemp("study-runs")
    make_pair(runs / "plain", loss="arcface", batch=32)
    make_study(runs, name="loss-batch", losses=("multi_similarity", "arcface"), batches=(16, 32, 64), seeds=(0, 1))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(runs / "server.log", "wb")
    env = dict(os.environ, TCM_RUNS_DIR=str(runs), TCM_DATA_DIR=str(SHARED / "data"), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
                             "--server.headless", "true", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the Streamlit server did not start: " + (runs / "server.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def no_exception(pg):
    assert pg.locator('[data-testid="stException"]').count() == 0


def test_results_and_accuracy_pages(study_server):
    with browser_page(study_server, height=1100, timeout_ms=90_000) as pg:
        pg.get_by_text("Will one distance threshold work").wait_for()
        pg.get_by_role("link", name="Results").first.click()
        pg.get_by_text("One row per comparison").wait_for()
        pg.locator('[data-testid="stDataFrame"]').wait_for()
        pg.get_by_text("9 of 9 comparisons").wait_for()  # 6 study cells, 1 pair, 2 examples
        for name in ("Download CSV", "Download Markdown", "Download LaTeX"):
            pg.get_by_role("button", name=name).wait_for()
        pg.wait_for_timeout(1500)  # the data grid paints its canvas
        no_exception(pg)
        pg.screenshot(path=str(SHOTS / "results.png"), full_page=True)

        pg.get_by_role("link", name="Accuracy vs consistency").first.click()
        pg.get_by_text("Each circle is a base loss").wait_for()
        points = pg.locator(".js-plotly-plot .scatterlayer .trace .points path")
        points.first.wait_for()
        assert points.count() == 12  # 6 cells x (circle, triangle)
        pg.wait_for_timeout(1000)
        box = points.nth(0).bounding_box()  # plotly's drag layer takes the click at the point
        pg.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        pg.wait_for_timeout(300)
        pg.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        pg.get_by_text("is loaded in the run picker").wait_for()
        loaded = pg.locator('[data-testid="stAlertContentSuccess"] strong').first.inner_text()
        assert loaded.startswith("loss-batch/")
        picker = pg.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first
        assert picker.get_by_role("combobox").input_value() == loaded  # the sidebar's picker shows the cell
        pg.get_by_role("link", name="Open it on the Threshold consistency page").wait_for()
        no_exception(pg)
        pg.mouse.move(5, 5)  # no hover label over the figure
        pg.wait_for_timeout(1000)
        pg.screenshot(path=str(SHOTS / "accuracy.png"), full_page=True)
