"""Exports of what the app shows: per-class tables as CSV, plotly figures as PNG and SVG at
presentation size. Figures are drawn offline by plotly.js itself (``Plotly.toImage``, the
plotly.js that ships inside the plotly package) in a headless Chromium driven by Playwright,
the browser the tests already use: no new dependency, no network (every request is refused).

Figures with two or more 3-D scenes (the sphere pair) are screenshotted live instead: for
``toImage`` plotly.js draws every scene in one shared WebGL context, and in headless Chromium's
software WebGL the first scene then shows through the second as white ghosts. Their SVG is the
PNG inside an ``<svg>`` (plotly's own SVG of a 3-D scene is a raster image too).

One ``FigureRenderer`` keeps one browser with plotly.js loaded and serves every render from it;
Playwright's sync API is bound to the thread that started it, so the renderer owns one worker
thread and callers from any thread (Streamlit's download callbacks run on their own) queue
their figures to it.
"""

from __future__ import annotations

import base64
import os
import queue
import shutil
import threading
from concurrent.futures import Future
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from tcm_core.errors import TCMError

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
PRESENTATION = dict(width=1280, height=720)  # 16:9 layout px; PNGs at scale 2 (2560x1440)
PNG_SCALE = 2
RENDER_TIMEOUT_S = 120.0
_LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
_DRAW = """async ([spec, opts]) => {
    return await Plotly.toImage(JSON.parse(spec), Object.assign({imageDataOnly: true}, opts));
}"""
_DRAW_LIVE = """async ([spec, opts]) => {
    const f = JSON.parse(spec), gd = document.getElementById('live');
    f.layout = Object.assign({}, f.layout, {width: opts.width, height: opts.height});
    await Plotly.newPlot(gd, f.data, f.layout, {displayModeBar: false, responsive: false});
    await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
}"""


def table_csv(table: pd.DataFrame) -> bytes:
    """``table`` as UTF-8 CSV, floats at full precision (they read back exactly), the index
    kept as the first column when it names something (e.g. ``class``)."""
    named = table.index.name is not None or not isinstance(table.index, pd.RangeIndex)
    return table.to_csv(index=named).encode("utf-8")


def find_chromium() -> Path | None:
    """The Chromium to render with: ``$TCM_CHROMIUM``, else ``/usr/bin/chromium``, else a
    ``chromium`` / ``chromium-browser`` / ``google-chrome`` on the PATH; None when none exists."""
    wanted = os.environ.get("TCM_CHROMIUM")
    if wanted:
        return Path(wanted) if Path(wanted).is_file() else None
    if Path("/usr/bin/chromium").is_file():
        return Path("/usr/bin/chromium")
    found = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    return Path(found) if found else None


def no_chromium_message() -> str:
    return ("PNG and SVG export needs Chromium, and none was found (set TCM_CHROMIUM to its path, or "
            "`apt-get install chromium`); CSV and HTML exports work without it.")


def _image_options(fmt: str, width: int, height: int, scale: float | None) -> dict:
    if fmt not in FORMATS:
        raise TCMError(f"image format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if not (isinstance(width, int) and isinstance(height, int) and 16 <= width <= 8000 and 16 <= height <= 8000):
        raise TCMError(f"image width and height must be integers in 16..8000 px; got {width!r} x {height!r}")
    scale = (PNG_SCALE if fmt == "png" else 1) if scale is None else scale
    if not 0 < scale <= 8:
        raise TCMError(f"image scale must be in (0, 8]; got {scale!r}")
    return dict(format=fmt, width=width, height=height, scale=scale)


class FigureRenderer:
    """Renders plotly figures to PNG / SVG bytes in one reused headless Chromium.

    The browser starts on the first ``render`` (a few seconds) and stays up for the next ones
    (about a second each) until ``close``. Thread-safe.
    """

    def __init__(self, executable: str | Path | None = None):
        self._executable = executable
        self._queue: queue.Queue = queue.Queue()  # the running worker's
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def executable(self) -> Path | None:
        return Path(self._executable) if self._executable else find_chromium()

    def render(self, fig: go.Figure, fmt: str = "png", *, width: int = PRESENTATION["width"],
               height: int = PRESENTATION["height"], scale: float | None = None) -> bytes:
        """``fig`` as PNG (``width * scale`` x ``height * scale`` pixels; scale 2 by default) or
        SVG (``width`` x ``height``) bytes. TCMError when no Chromium exists or drawing fails."""
        options = _image_options(fmt, width, height, scale)
        exe = self.executable
        if exe is None or not exe.is_file():
            raise TCMError(no_chromium_message())
        done: Future = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._queue = queue.Queue()
                self._thread = threading.Thread(target=self._serve, args=(exe, self._queue), daemon=True,
                                                name="tcm-figure-renderer")
                self._thread.start()
            self._queue.put((fig.to_json(), dict(options, live=_scenes_3d(fig) >= 2), done))
        return done.result(timeout=RENDER_TIMEOUT_S)

    def close(self) -> None:
        """Stop the browser (a later ``render`` starts a new one)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._queue.put(None)
        if thread is not None:
            thread.join(timeout=30)

    def _serve(self, exe: Path, jobs: queue.Queue) -> None:
        try:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(exe), args=_LAUNCH_ARGS)
                pages = {}  # (kind, scale) -> a page with plotly.js loaded
                while (item := jobs.get()) is not None:
                    spec, options, done = item
                    try:
                        done.set_result(_draw(browser, pages, spec, options))
                    except Exception as exc:  # one bad figure: report it, keep the browser
                        done.set_exception(TCMError(f"the figure could not be drawn: {exc}"))
                        if not browser.is_connected():
                            raise
                browser.close()
        except Exception as exc:  # the browser would not start or died: fail what is waiting
            self._fail_waiting(jobs, TCMError(f"Chromium at {exe} could not render figures: {exc}"))

    def _fail_waiting(self, jobs: queue.Queue, error: TCMError) -> None:
        with self._lock:  # no new item can be queued for this dead worker from here on
            if self._queue is jobs:
                self._thread = None
            while True:
                try:
                    item = jobs.get_nowait()
                except queue.Empty:
                    return
                if item is not None and not item[2].done():
                    item[2].set_exception(error)


def _scenes_3d(fig: go.Figure) -> int:
    return sum(1 for name in fig.layout.to_plotly_json() if name.startswith("scene"))


def _draw(browser, pages: dict, spec: str, options: dict) -> bytes:
    """One figure's image bytes, by ``Plotly.toImage`` or, for several 3-D scenes, a screenshot."""
    options = dict(options)
    live, fmt, width, height = options.pop("live"), options["format"], options["width"], options["height"]
    if not live:
        data = _page(browser, pages, "static", 1).evaluate(_DRAW, [spec, options])
        return base64.b64decode(data) if fmt == "png" else data.encode("utf-8")
    page = _page(browser, pages, "live", options["scale"] if fmt == "png" else 2)
    page.set_viewport_size({"width": width, "height": height})
    try:
        page.evaluate(_DRAW_LIVE, [spec, options])
        png = page.locator("#live").screenshot(type="png")
    finally:
        page.evaluate("() => Plotly.purge(document.getElementById('live'))")
    if fmt == "png":
        return png
    return (f"<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink' "
            f"width='{width}' height='{height}' viewBox='0 0 {width} {height}'><image width='{width}' "
            f"height='{height}' xlink:href='data:image/png;base64,{base64.b64encode(png).decode()}'/></svg>"
            ).encode("utf-8")


def _page(browser, pages: dict, kind: str, scale: float):
    """A blank page (``scale`` device pixels per px) with plotly.js loaded from the plotly
    package and the network shut; made once per kind and scale."""
    from plotly.offline import get_plotlyjs

    if (kind, scale) not in pages:
        page = browser.new_page(device_scale_factor=scale)
        page.route("**/*", lambda route: route.abort())
        page.set_content("<!DOCTYPE html><html><head><meta charset='utf-8'><style>body{margin:0}</style>"
                         "</head><body><div id='live'></div></body></html>")
        page.add_script_tag(content=get_plotlyjs())
        pages[kind, scale] = page
    return pages[kind, scale]


_default: FigureRenderer | None = None
_default_lock = threading.Lock()


def default_renderer() -> FigureRenderer:
    """The process's shared renderer (one browser per process)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FigureRenderer()
        return _default


def figure_image(fig: go.Figure, fmt: str = "png", **options) -> bytes:
    """``fig`` as PNG or SVG bytes at presentation size, drawn by the shared renderer
    (``FigureRenderer.render``'s options)."""
    return default_renderer().render(fig, fmt, **options)
