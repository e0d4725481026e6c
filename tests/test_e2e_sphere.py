"""End to end in Debian's Chromium (Playwright): open the sphere page for the MNIST ArcFace
example, wait until both spheres are drawn, and save tests/_artifacts/sphere.png. In CI a
missing browser fails (the server fixture's check, as in test_e2e_browser.py)."""



from conftest import SHOTS, browser_page


def test_sphere_page_draws_both_spheres(server):
    with browser_page(server, height=1100, timeout_ms=90_000) as pg:
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
