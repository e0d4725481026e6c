"""The threshold page's downloads in Debian's Chromium against a real Streamlit server: the PNG,
SVG, CSV and HTML-report buttons each give a valid file. Screenshots: tests/_artifacts/exports*.png.
In CI a missing browser fails (conftest)."""

import io
import xml.etree.ElementTree as ET

import pandas as pd
from test_exports import PNG_SIGNATURE, write_toy_pair

from conftest import SHOTS, browser_page, streamlit_server


def download(pg, key: str) -> bytes:
    """Press the download button with Streamlit key ``key`` and return the file it gives."""
    with pg.expect_download(timeout=120_000) as got:
        pg.locator(f".st-key-{key} button").first.click()
    return open(got.value.path(), "rb").read()


def test_threshold_page_downloads(tmp_path):
    from PIL import Image

    write_toy_pair(tmp_path / "toy-pair")  # the run picker's first entry
    with streamlit_server(tmp_path) as url, browser_page(url, height=1400) as pg:
        pg.get_by_text("Will one distance threshold work").wait_for()
        pg.get_by_role("link", name="Threshold consistency", exact=True).first.click()
        pg.get_by_text("Each thin line is one test class").wait_for()
        pg.locator(".st-key-dl_report button").first.wait_for()
        pg.wait_for_timeout(1500)
        pg.screenshot(path=str(SHOTS / "exports.png"), full_page=True)
        assert pg.locator('[data-testid="stException"]').count() == 0

        png = download(pg, "dl_png_utility_curves")
        assert png.startswith(PNG_SIGNATURE) and Image.open(io.BytesIO(png)).size == (2560, 1440)
        svg = ET.fromstring(download(pg, "dl_svg_utility_curves"))
        assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.get("width") == "1280"
        table = pd.read_csv(io.BytesIO(download(pg, "dl_csv_per_class")), index_col="class")
        assert len(table) == 10 and "FAR +TCM" in table.columns
        report = download(pg, "dl_report").decode()
        assert report.startswith("<!DOCTYPE html>") and "toy-pair: baseline vs +TCM" in report
        pg.locator(".st-key-dl_report button").first.scroll_into_view_if_needed()
        pg.wait_for_timeout(500)
        pg.screenshot(path=str(SHOTS / "exports_table.png"))
        assert pg.locator('[data-testid="stException"]').count() == 0
