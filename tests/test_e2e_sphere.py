"""End to end in Debian's Chromium (Playwright): open the sphere page for the MNIST ArcFace
example, wait until both spheres are drawn, and save tests/_artifacts/sphere.png. In CI a
missing browser fails (the server fixture's check, as in test_e2e_browser.py)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, SHARED

CHROMIUM = os.environ.get("TCM_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "tests" / "_artifacts"


def _browser_or_fail():
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _browser_or_fail()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runs = tmp_path_factory.mktemp("runs")
    log = open(runs / "server.log", "wb")
    env = dict(os.environ, TCM_RUNS_DIR=str(runs), TCM_DATA_DIR=str(SHARED / "data"), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                             "--server.port", str(port), "--server.headless", "true",
                             "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the Streamlit server did not start: " + (runs / "server.log").read_text()[-2000:])
    yield url
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_sphere_page_draws_both_spheres(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        pg = browser.new_page(viewport={"width": 1500, "height": 1100})
        pg.set_default_timeout(90_000)
        pg.goto(server)
        pg.get_by_text("Will one distance threshold work").wait_for()
        pg.get_by_role("combobox").first.click()  # the sidebar's run picker
        pg.get_by_role("option", name="example: mnist-arcface-3d").click()
        pg.get_by_role("link", name="Embeddings on the sphere").first.click()
        pg.get_by_text("ArcFace puts each class around one").wait_for()
        # drawn: the plotly figure has both 3-D scenes and the chart's caption is there
        pg.locator(".js-plotly-plot .gl-container #scene2").wait_for()
        pg.get_by_text("test embeddings per run on the unit sphere").wait_for()
        pg.wait_for_timeout(3000)  # WebGL finishes painting the surfaces
        assert pg.locator('[data-testid="stException"]').count() == 0
        assert pg.locator(".js-plotly-plot .gl-container canvas").count() >= 1
        pg.locator('[data-testid="stPlotlyChart"]').first.scroll_into_view_if_needed()
        pg.screenshot(path=str(SHOTS / "sphere.png"), full_page=True)
        browser.close()
