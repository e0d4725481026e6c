"""Two browser sessions press Train on the same settings: one training runs, and both get the
same run (the queue's run cache joins the second request to the first)."""

import re

from conftest import CHROMIUM, SHOTS, streamlit_server


def press_train(pg, images: str) -> None:
    try:
        pg.get_by_text("Will one distance threshold work").wait_for(timeout=90_000)
    except Exception:
        pg.screenshot(path=str(SHOTS / "classroom_fail.png"), full_page=True)
        raise
    pg.get_by_role("link", name="Train", exact=True).first.click()
    pg.get_by_text("Train a pair").first.wait_for()
    field = pg.get_by_label("Training images (0: all)")
    field.fill(images)
    field.press("Enter")
    pg.get_by_role("button", name="Train baseline and +TCM").click()


def finished_run(pg) -> str:
    heading = pg.get_by_text(re.compile(r": finished$")).first
    heading.wait_for(timeout=300_000)
    return heading.inner_text().removesuffix(": finished").strip()


def test_two_sessions_same_defaults_one_training(tmp_path):
    from playwright.sync_api import sync_playwright

    with streamlit_server(tmp_path) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        first, second = (browser.new_context(viewport={"width": 1500, "height": 1000}).new_page() for _ in range(2))
        for pg in (first, second):  # two contexts: two sessions that share nothing but the server
            pg.set_default_timeout(60_000)
            pg.goto(url)
        press_train(first, "2000")
        press_train(second, "2000")
        runs = finished_run(first), finished_run(second)
        first.wait_for_timeout(1000)
        second.screenshot(path=str(SHOTS / "classroom_second.png"), full_page=True)
        assert runs[0] == runs[1]
        pairs = [p for p in tmp_path.iterdir() if (p / "tcm").is_dir()]
        assert [p.name for p in pairs] == [runs[0]]  # one training's folder, nothing else trained
        browser.close()
