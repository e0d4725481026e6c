"""In Chromium: upload two .npz files as a pair, reach the threshold page and see the OPIS that
``tcm evaluate`` computes; a bad file gives one error and the app keeps working."""

import numpy as np
import pytest

from conftest import SHOTS, browser_page, clustered, metric_value
from tcm_core.metrics import evaluate
from tcm_core.viz import format_metric


@pytest.fixture(scope="module")
def page(server):
    with browser_page(server) as pg:
        yield pg


def test_upload_pair_then_threshold_page(page, tmp_path):
    pg = page
    (x, y), (x2, y2) = clustered(41, n=500, classes=8, dim=16), clustered(42, n=500, classes=8, dim=16)
    np.savez(tmp_path / "model_a.npz", embeddings=x, labels=y)
    np.savez(tmp_path / "model_b.npz", embeddings=x2, labels=y2)
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 cut short")
    pg.get_by_text("Will one distance threshold work").wait_for()
    pg.get_by_role("link", name="Your embeddings", exact=True).first.click()
    pg.get_by_text("Bring the embeddings of your own model").wait_for()

    pg.locator('input[type="file"]').set_input_files(str(tmp_path / "broken.npz"))
    pg.get_by_role("button", name="Add to the run picker").click()
    error = pg.locator('[data-testid="stAlertContentError"]')
    error.first.wait_for()
    assert error.count() == 1 and "broken.npz" in error.first.inner_text()
    pg.screenshot(path=str(SHOTS / "upload_error.png"), full_page=True)
    pg.locator('[data-testid="stFileChipDeleteBtn"]').first.click()
    pg.locator('[data-testid="stFileChip"]').first.wait_for(state="detached")
    pg.wait_for_timeout(1500)

    pg.locator('input[type="file"]').set_input_files([str(tmp_path / "model_a.npz"), str(tmp_path / "model_b.npz")])
    pg.get_by_text("Pair name").wait_for()
    pg.get_by_role("button", name="Add to the run picker").click()
    pg.get_by_text("Added model_a vs model_b").wait_for(timeout=60_000)
    pg.screenshot(path=str(SHOTS / "upload.png"), full_page=True)
    assert pg.locator('[data-testid="stException"]').count() == 0

    pg.get_by_role("link", name="Threshold consistency", exact=True).first.click()
    pg.get_by_text("Each thin line is one test class").wait_for()
    pg.get_by_text("Threshold for a target FAR").wait_for()
    pg.wait_for_timeout(1500)
    assert pg.get_by_role("combobox", name="Run (baseline vs +TCM, or an upload)").input_value() == "upload pair: model_a vs model_b"
    assert metric_value(pg, "OPIS baseline") == format_metric(evaluate(x, y).opis, "opis")
    assert metric_value(pg, "OPIS +TCM") == format_metric(evaluate(x2, y2).opis, "opis")
    pg.screenshot(path=str(SHOTS / "upload_threshold.png"), full_page=True)
    assert pg.locator('[data-testid="stException"]').count() == 0

    # hovering a worst class's curve names it: integer class names travel as binary customdata
    point = pg.evaluate("""() => {
      const gd = document.querySelector('.js-plotly-plot');
      gd.scrollIntoView({block: "center"});
      const trace = gd._fullData.find(t => t.name.startsWith('worst'));
      const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
      return {name: trace.customdata[3], x: box.left + xa._offset + xa.l2p(trace.x[3]),
              y: box.top + ya._offset + ya.l2p(trace.y[3])};
    }""")
    assert point["name"] in set(y.tolist())
    pg.mouse.move(point["x"], point["y"])
    pg.locator(".hoverlayer .hovertext").first.wait_for()
    assert f"worst: class {point['name']}" in pg.locator(".hoverlayer").first.text_content()
    pg.screenshot(path=str(SHOTS / "upload_threshold_hover.png"))
