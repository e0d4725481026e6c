import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def six_points():
    """METHOD.md's worked example: six points on the unit circle, three classes."""
    angles = np.deg2rad([0, 40, 60, 150, 200, 210])
    return np.stack([np.cos(angles), np.sin(angles)], axis=1), np.array([0, 0, 1, 1, 2, 2])


def clustered(seed, n=300, classes=10, dim=8, spread=(0.3, 1.5)):
    """Gaussian clusters whose spread differs per class (so thresholds are inconsistent)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centers = rng.normal(size=(classes, dim))
    scale = rng.uniform(*spread, size=classes)
    return centers[y] + scale[y, None] * rng.normal(size=(n, dim)), y


def synthetic_curves(num_classes, k=201, seed=0):
    """Synthetic but well-formed ``UtilityCurves``: monotone TPR up, TNR down over the grid."""
    from tcm_core.metrics import UtilityCurves, utility_from_rates

    rng = np.random.default_rng(seed)
    t = np.linspace(0.5, 1.2, k)
    center = rng.uniform(0.6, 1.1, (num_classes, 1))
    tpr = 1 / (1 + np.exp(-(t - center) * 20))
    tnr = 1 - 1 / (1 + np.exp(-(t - center - 0.2) * 20))
    classes = np.arange(num_classes)
    return UtilityCurves(t, classes, np.full(num_classes, 5), utility_from_rates(tpr, tnr), tpr, tnr,
                         np.linspace(1e-3, 1e-1, k), classes[:0], 1.0, (1e-3, 1e-1), None)


# ------------------------------------------------------------ browser tests (Playwright)

CHROMIUM = os.environ.get("TCM_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "tests" / "_artifacts"


def _browser_or_fail():
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def streamlit_server(runs: Path):
    """A Streamlit server of the app on a free localhost port whose runs folder is ``runs``;
    yields its URL and stops it afterwards."""
    _browser_or_fail()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(runs / "server.log", "wb")
    env = dict(os.environ, TCM_RUNS_DIR=str(runs), TCM_DATA_DIR=str(SHARED / "data"), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                             "--server.port", str(port), "--server.headless", "true",
                             "--server.fileWatcherType", "none"],
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


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A Streamlit server for the browser tests (one per session), on a free localhost port."""
    with streamlit_server(tmp_path_factory.mktemp("runs")) as url:
        yield url


def metric_value(pg, label: str) -> str:
    """The value of the first st.metric whose label starts with ``label`` (Playwright page):
    "OPIS baseline" finds "OPIS baseline (epoch 1)" but not "0.1-OPIS baseline"."""
    box = pg.locator('[data-testid="stMetric"]').filter(
        has=pg.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}")))
    return box.first.locator('[data-testid="stMetricValue"]').inner_text().strip()


def metric_delta(pg, label: str) -> str:
    """The delta text of the first st.metric whose label starts with ``label`` ("" when none)."""
    box = pg.locator('[data-testid="stMetric"]').filter(
        has=pg.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}")))
    delta = box.first.locator('[data-testid="stMetricDelta"]')
    return delta.inner_text().strip() if delta.count() else ""


def wait_metric_change(pg, label: str, old: str, timeout: int = 30_000) -> str:
    """Wait until the st.metric whose label starts with ``label`` no longer shows ``old``."""
    pg.wait_for_function(
        """([label, old]) => [...document.querySelectorAll('[data-testid="stMetric"]')].some(m => {
               const l = m.querySelector('[data-testid="stMetricLabel"]');
               const v = m.querySelector('[data-testid="stMetricValue"]');
               return l && v && l.innerText.trim().startsWith(label) && v.innerText.trim() !== old; })""",
        arg=[label, old], timeout=timeout)
    return metric_value(pg, label)


@contextlib.contextmanager
def browser_page(url: str, *, height: int = 1000, timeout_ms: int = 60_000):
    """A Chromium page (Debian's browser, driven by Playwright) opened at ``url``."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            pg = browser.new_page(viewport={"width": 1500, "height": height})
            pg.set_default_timeout(timeout_ms)
            pg.goto(url)
            yield pg
        finally:
            browser.close()
