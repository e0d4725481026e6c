"""The app frame renders its home page without an exception."""

from streamlit.testing.v1 import AppTest

from conftest import ROOT


def test_home_renders():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "TCM Explorer"
    assert "threshold inconsistency" in at.markdown[0].value
