"""Links in Chromium: a page's URL works as a fresh server's first request (the app's frame, the
run picker, the page's content), and a copied link opened in a fresh browser shows the same page,
run, seed and slider values; a link to a run this server lacks says so and shows the default."""

from conftest import SHOTS, browser_page, metric_value, streamlit_server, wait_metric_change


def test_first_request_then_copied_link(tmp_path):
    with streamlit_server(tmp_path) as url:
        with browser_page(url + "/threshold?run=example:%20mnist-arcface-3d&seed=1") as pg:
            pg.get_by_text("Each thin line is one test class").wait_for()  # the page ran inside app.py's frame
            pg.wait_for_timeout(1500)
            sidebar = pg.locator('[data-testid="stSidebar"]').inner_text()
            assert "Tune TCM margins" in sidebar and "margin panels" not in sidebar  # titles, not file names
            picker = pg.get_by_role("combobox", name="Run (baseline vs +TCM, or an upload)")
            assert picker.input_value() == "example: mnist-arcface-3d"
            assert pg.get_by_role("combobox", name="Seed (3 repeats)").input_value() == "1"
            before = metric_value(pg, "OPIS baseline")
            thumb = pg.get_by_role("slider").first  # the FAR band's lower end
            thumb.focus()
            thumb.press("ArrowRight")
            moved = wait_metric_change(pg, "OPIS baseline", before)
            pg.wait_for_timeout(1500)
            link = pg.locator('[data-testid="stSidebar"] [data-testid="stCode"]').first.inner_text().strip()
            assert link == pg.url and "far=0.003%2C0.1" in link
            pg.screenshot(path=str(SHOTS / "link_source.png"), full_page=True)
        with browser_page(link) as fresh:  # another browser: nothing shared but the link
            fresh.get_by_text("Each thin line is one test class").wait_for()
            fresh.wait_for_timeout(1500)
            assert metric_value(fresh, "OPIS baseline") == moved
            assert fresh.get_by_role("combobox", name="Seed (3 repeats)").input_value() == "1"
            assert fresh.get_by_role("slider").first.get_attribute("aria-valuetext") == "0.003"
            fresh.screenshot(path=str(SHOTS / "link_opened.png"), full_page=True)
        with browser_page(url + "/threshold?run=gone-pair&beta=9") as gone:
            gone.get_by_text("Each thin line is one test class").wait_for()
            warning = gone.locator('[data-testid="stAlertContentWarning"]').first
            assert "“gone-pair” is not on this server" in warning.inner_text()
            assert metric_value(gone, "OPIS baseline")  # the default view
