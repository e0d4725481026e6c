"""End to end in Debian's Chromium (Playwright): open the app, train a short MNIST pair from
the Train page, see OPIS for both runs, move the calibration slider on the threshold page and
see OPIS change. Screenshots land in tests/_artifacts/. In CI a missing browser fails."""

import re

import pytest

from conftest import SHOTS, browser_page, metric_value, wait_metric_change


@pytest.fixture(scope="module")
def page(server):
    with browser_page(server) as pg:
        yield pg


def no_exception(pg):
    assert pg.locator('[data-testid="stException"]').count() == 0


def test_train_then_threshold_view(page):
    pg = page
    pg.get_by_text("Will one distance threshold work").wait_for()
    pg.wait_for_timeout(1500)
    pg.screenshot(path=str(SHOTS / "home.png"), full_page=True)
    no_exception(pg)
    assert pg.get_by_text(re.compile(r"^95% CI .*: (within|beyond) noise$")).count() >= 2  # under each change

    pg.get_by_role("link", name="Train", exact=True).first.click()
    pg.get_by_text("Train a pair").first.wait_for()
    field = pg.get_by_label("Training images (0: all)")
    field.fill("3000")
    field.press("Enter")
    pg.get_by_role("button", name="Train baseline and +TCM").click()
    pg.get_by_text(re.compile(r": finished$")).first.wait_for(timeout=240_000)
    pg.wait_for_timeout(1500)
    base, tcm = metric_value(pg, "OPIS baseline"), metric_value(pg, "OPIS +TCM")
    assert float(base) > 0 and float(tcm) > 0
    assert pg.get_by_text(re.compile(r"^95% CI .*: (within|beyond) noise$")).count() >= 2  # under each change
    pg.screenshot(path=str(SHOTS / "train.png"), full_page=True)
    no_exception(pg)

    pg.get_by_role("button", name="Open in the threshold view").click()
    pg.get_by_text("Each thin line is one test class").wait_for()
    pg.wait_for_timeout(2000)
    before = metric_value(pg, "OPIS baseline")
    # every change carries its interval, right under it
    assert pg.get_by_text(re.compile(r"^95% CI .*: (within|beyond) noise$")).count() == 3
    pg.screenshot(path=str(SHOTS / "threshold.png"), full_page=True)
    thumb = pg.get_by_role("slider").first  # the FAR band's lower end
    thumb.focus()
    thumb.press("ArrowRight")
    thumb.press("ArrowRight")
    after = wait_metric_change(pg, "OPIS baseline", before)
    assert after != before
    pg.wait_for_timeout(1500)
    pg.screenshot(path=str(SHOTS / "threshold_moved.png"), full_page=True)
    no_exception(pg)
