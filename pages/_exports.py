"""Download buttons for what the pages show (``tcm_core.viz.export`` and ``viz.report``): a
figure as PNG / SVG at presentation size, a table as CSV, a pair's self-contained HTML report.
Images and reports are made only when their button is pressed (Streamlit runs the callable on
its own thread, so the page is not held up), the images by one headless Chromium per server."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from pages._common import PAIR, SEED, entry
from tcm_core.viz.export import FORMATS, default_renderer, find_chromium, no_chromium_message, table_csv
from tcm_core.viz.report import pair_report_html


def _stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "tcm_export"


def figure_downloads(fig, name: str) -> None:
    """PNG and SVG buttons for ``fig`` (drawn on press), or a note when no Chromium is found."""
    if find_chromium() is None:
        st.info(no_chromium_message(), icon=":material/info:")
        return
    renderer, stem = default_renderer(), _stem(name)  # one browser per server, started on the first press
    row = st.container(horizontal=True)
    for fmt, mime in FORMATS.items():
        row.download_button(fmt.upper(), lambda fmt=fmt: renderer.render(fig, fmt), f"{stem}.{fmt}", mime,
                            key=f"dl_{fmt}_{stem}", icon=":material/image:", on_click="ignore",
                            help=f"The figure as {fmt.upper()} at presentation size (1280 × 720"
                                 + (", 2× pixels)" if fmt == "png" else ")"))


def table_download(table, name: str) -> None:
    """A CSV button for ``table`` (a DataFrame; its index kept when it names something)."""
    stem = _stem(name)
    st.download_button("CSV", table_csv(table), f"{stem}.csv", "text/csv", key=f"dl_csv_{stem}",
                       icon=":material/table:", on_click="ignore", help="This table as CSV, full precision")


def report_download(folder: Path | None = None, *, settings=None, threshold: float | None = None) -> None:
    """An HTML-report button for ``folder`` (default: the pair picked in the sidebar, with its
    seed), made on press (``viz.report``; a few seconds) under ``settings`` / ``threshold``."""
    seed = None
    if folder is None:
        folder, seed = entry(st.session_state.get(PAIR)), st.session_state.get(SEED)
    if folder is None:
        return
    st.download_button(
        "HTML report", lambda: pair_report_html(folder, seed=seed, settings=settings, threshold=threshold),
        f"{_stem(Path(folder).name)}_report.html", "text/html", key="dl_report", icon=":material/description:",
        on_click="ignore", help="The pair's numbers, figures, per-class table, config and versions in one "
                                "file that opens without the server or the internet")
