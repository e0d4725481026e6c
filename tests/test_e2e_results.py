"""End to end in Debian's Chromium (Playwright): the Results and Accuracy-vs-consistency pages on
a small study, a click on a point loading its cell into the run picker; screenshots
tests/_artifacts/results.png and accuracy.png. A server of its own, whose runs folder holds the
study (the shared one's runs folder stays as the other browser tests expect it)."""

import pytest

from conftest import ROOT, SHOTS, browser_page, streamlit_server
from tcm_core.experiments.results import results_table
from test_results import make_pair, make_study


@pytest.fixture(scope="module")
def study_server(tmp_path_factory):
    runs = tmp_path_factory.mktemp("study-runs")
    make_pair(runs / "plain", loss="arcface", batch=32)
    make_study(runs, name="loss-batch", losses=("multi_similarity", "arcface"), batches=(16, 32, 64), seeds=(0, 1))
    with streamlit_server(runs) as url:
        yield url


def no_exception(pg):
    assert pg.locator('[data-testid="stException"]').count() == 0


def test_results_and_accuracy_pages(study_server):
    with browser_page(study_server, height=1100, timeout_ms=90_000) as pg:
        pg.get_by_text("Will one distance threshold work").wait_for()
        pg.get_by_role("link", name="Results").first.click()
        pg.get_by_text("One row per comparison").wait_for()
        pg.locator('[data-testid="stDataFrame"]').wait_for()
        rows = 6 + 1 + len(results_table(ROOT / "assets" / "examples", prefix="example: "))  # + the examples
        pg.get_by_text(f"{rows} of {rows} comparisons").wait_for()
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
