"""The app's exports and server settings: the threshold page's download buttons (PNG, SVG, CSV,
HTML report), a clear note instead of PNG / SVG when there is no Chromium, the Streamlit settings
that hide the developer menu and error details, and no page relying on Streamlit's magic."""

import ast
import tomllib

from streamlit.testing.v1 import AppTest
from test_exports import write_toy_pair

from conftest import ROOT

APP = str(ROOT / "app.py")


def threshold_page(tmp_path, monkeypatch, **env):
    write_toy_pair(tmp_path / "toy-pair")  # the run picker's first entry
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("pages/threshold.py")
    return at.run()


def test_threshold_page_has_the_download_buttons(tmp_path, monkeypatch):
    at = threshold_page(tmp_path, monkeypatch)
    assert not at.exception
    buttons = {b.key: b for b in at.download_button}
    assert {"dl_png_utility_curves", "dl_svg_utility_curves", "dl_csv_per_class", "dl_report"} <= set(buttons)
    assert [buttons[k].label for k in ("dl_png_utility_curves", "dl_svg_utility_curves", "dl_csv_per_class",
                                       "dl_report")] == ["PNG", "SVG", "CSV", "HTML report"]
    assert buttons["dl_csv_per_class"].proto.url.endswith(".csv")  # the table is small: sent at once
    for key in ("dl_png_utility_curves", "dl_svg_utility_curves", "dl_report"):  # made on press
        assert buttons[key].proto.deferred_file_id and not buttons[key].proto.url


def test_without_chromium_the_page_says_so(tmp_path, monkeypatch):
    at = threshold_page(tmp_path, monkeypatch, TCM_CHROMIUM=str(tmp_path / "no-such-chromium"))
    assert not at.exception
    assert any("needs Chromium" in i.value for i in at.info)
    keys = {b.key for b in at.download_button}
    assert {"dl_csv_per_class", "dl_report"} <= keys and "dl_png_utility_curves" not in keys


def test_streamlit_settings_for_visitors():
    from streamlit.config import ShowErrorDetailsConfigOptions, _config_options_template

    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["client"]["toolbarMode"] == "viewer"  # no developer menu, Rerun or Deploy
    assert '"viewer"' in _config_options_template["client.toolbarMode"].description  # a value 1.67 knows
    assert settings["client"]["showErrorDetails"] == ShowErrorDetailsConfigOptions.NONE.value
    assert settings["runner"]["magicEnabled"] is False
    assert settings["server"]["address"] == "localhost"


def magic_echoes(source: str) -> list[int]:
    """Lines of the statements Streamlit's magic would write to the page: bare expressions other
    than calls, docstrings, yield and await (``streamlit.runtime.scriptrunner.magic``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            for i, stmt in enumerate(body if isinstance(body, list) else []):  # a lambda's body is one expression
                if not isinstance(stmt, ast.Expr):
                    continue
                value = stmt.value
                docstring = (i == 0 and field == "body" and isinstance(value, ast.Constant)
                             and isinstance(value.value, str)
                             and isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)))
                if not (docstring or isinstance(value, (ast.Call, ast.Yield, ast.YieldFrom, ast.Await))):
                    found.append(stmt.lineno)
    return found


def test_no_page_relies_on_magic():
    assert magic_echoes('"""doc"""\nimport x\nx.y\nif x:\n    "shown"\nst.write(1)\n') == [3, 5]  # the check works
    scripts = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
    assert len(scripts) > 8
    echoed = {p.name: lines for p in scripts if (lines := magic_echoes(p.read_text()))}
    assert echoed == {}, f"bare expressions that magic would have shown: {echoed}"
