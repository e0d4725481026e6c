"""AppTests of uploads: a single run, a before / after pair, the same file again, and every kind
of bad file (one ``st.error`` naming the file, nothing stored, the page intact)."""

import io
import json
import pickle

import numpy as np
import pytest
from safetensors.numpy import save as save_safetensors
from streamlit import config
from streamlit.testing.v1 import AppTest

from conftest import ROOT, clustered
from test_io_formats import list_parquet, npz_bytes
from tcm_core.metrics import evaluate
from tcm_core.training import uploads
from tcm_core.viz import format_metric

APP = str(ROOT / "app.py")


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/upload.py")
    return at.run()


def upload(at, *files):
    at.file_uploader(key="upload_files").set_value([(n, b, "application/octet-stream") for n, b in files]).run()
    at.button[0].click().run()
    return at


def threshold_metrics(at):
    at.switch_page("pages/threshold.py").run()
    assert not at.exception and not at.error
    return {m.label: m.value for m in at.metric}


def test_single_upload_is_picked_and_evaluated(app, tmp_path):
    x, y = clustered(31, n=300, classes=6, dim=8)
    upload(app, ("mine.safetensors", save_safetensors({"embeddings": x.astype(np.float32), "labels": y})))
    assert not app.exception and not app.error
    assert app.session_state["pair_label"] == "upload: mine"
    assert "mine" in app.dataframe[0].value["name"].tolist()  # the stored uploads table
    shown = threshold_metrics(app)
    assert shown["OPIS"] == format_metric(evaluate(x.astype(np.float32), y).opis, "opis")
    assert any("single run" in c.value for c in app.caption)
    app.switch_page("pages/results.py").run()  # a page that needs pairs keeps working
    assert not app.exception


def test_pair_upload_matches_evaluate_and_reupload_is_instant(app, tmp_path):
    (x, y), (x2, y2) = clustered(32, n=300, classes=6, dim=8), clustered(33, n=300, classes=6, dim=8)
    upload(app, ("before.npz", npz_bytes(x, y)), ("after.parquet", list_parquet(x2, y2)))
    assert not app.exception and not app.error
    assert app.session_state["pair_label"] == "upload pair: before vs after"
    shown = threshold_metrics(app)
    assert shown["OPIS baseline"] == format_metric(evaluate(x, y).opis, "opis")
    assert shown["OPIS +TCM"] == format_metric(evaluate(x2, y2).opis, "opis")
    notes = [a["text"] for a in json.loads(app.get("plotly_chart")[0].proto.spec)["layout"]["annotations"]]
    for run in ("baseline", "+TCM"):  # the figure's corner note says what the metric says
        assert any(n.startswith(f"OPIS {shown['OPIS ' + run]}<br>") for n in notes), (run, notes)
    assert [s.value for s in app.subheader][:1] == ["Threshold for a target FAR"]
    folders = sorted(p.name for p in uploads.uploads_root(tmp_path).iterdir())
    stored = uploads.find_uploads(tmp_path)
    again = uploads.check_upload(tmp_path, "renamed.npz", npz_bytes(x, y))  # found by hash: no evaluation
    assert again.stored is not None and again.embeddings is None and again.stored.name == "before"
    assert sorted(p.name for p in uploads.uploads_root(tmp_path).iterdir()) == folders
    assert len(stored) == 2
    from tcm_core.viz.report import build_pair_report  # the HTML report of an uploaded pair

    report = build_pair_report(uploads.find_upload_pairs(tmp_path)[0].root)
    assert report.title == "before vs after: baseline vs +TCM" and report.classes.shape[0] == 6


def _bad_files():
    x, y = clustered(34, n=120, classes=4, dim=6)
    nan = x.copy()
    nan[5, 2] = np.nan
    obj = io.BytesIO()
    np.savez(obj, embeddings=x, labels=np.array([object()] * len(y), dtype=object))
    return {
        "corrupt.npz": (b"PK\x03\x04garbage", "not a readable .npz"),
        "empty.npz": (b"", "is empty"),
        "pickled.npz": (pickle.dumps({"embeddings": x, "labels": y}), "pickled data is never loaded"),
        "object.npz": (obj.getvalue(), "pickle"),
        "nan.npz": (npz_bytes(nan, y), "NaN"),
        "shape.npz": (npz_bytes(x[:, 0], y), "shape"),
        "oneclass.npz": (npz_bytes(x, np.zeros(len(y), int)), "at least 2 classes"),
        "big.npz": (npz_bytes(np.random.default_rng(0).normal(size=(3000, 64)), np.arange(3000) % 5), "upload cap"),
    }


def test_bad_uploads_one_error_each_nothing_stored(app, tmp_path):
    config.set_option("server.maxUploadSize", 1)  # MB: big.npz (1.5 MB) is over it
    try:
        for name, (blob, needle) in _bad_files().items():
            upload(app, (name, blob))
            assert not app.exception, name
            errors = [e.value for e in app.error]
            assert len(errors) == 1 and name in errors[0] and needle in errors[0], (name, errors)
            assert app.title[0].value == "Your embeddings" and app.file_uploader  # the page is intact
    finally:
        config.set_option("server.maxUploadSize", 200)
    assert uploads.find_uploads(tmp_path) == []
    assert not [p for p in uploads.uploads_root(tmp_path).glob("*") if p.name != "pairs"]  # no partial folders


def test_pair_with_a_bad_half_stores_nothing(app, tmp_path):
    x, y = clustered(35, n=120, classes=4, dim=6)
    upload(app, ("good.npz", npz_bytes(x, y)), ("bad.npz", npz_bytes(x, np.zeros(len(y), int))))
    assert len(app.error) == 1 and "bad.npz" in app.error[0].value
    assert uploads.find_uploads(tmp_path) == [] and uploads.find_upload_pairs(tmp_path) == []
    app.switch_page("pages/threshold.py").run()  # the server keeps serving: the example pair shows
    assert not app.exception and "OPIS baseline" in {m.label for m in app.metric}


def test_single_upload_target_far_and_margin_suggestion(app, tmp_path):
    from tcm_core.metrics.similarities import pair_similarities
    from tcm_core.metrics.suggest import suggest_margins_from_histograms
    from tcm_core.metrics.thresholds import find_threshold

    x, y = clustered(36, n=300, classes=6, dim=8)
    upload(app, ("own.npz", npz_bytes(x, y)))
    app.switch_page("pages/threshold.py").run()
    app.select_slider(key="target_far").set_value(1e-2).run()
    report = find_threshold(x, y, far=1e-2)
    text = " ".join(m.value for m in app.markdown)
    assert f"threshold d ≤ **{report.threshold:.4f}**" in text
    assert f"**{int((report.classes['far'] > 1e-2).sum())} of {len(report.classes)} classes**" in text
    assert {b.label for b in app.get("download_button") if b.key.startswith(("csv::", "json::"))} == {
        "Per-class table (CSV)", "Threshold (JSON)"}

    app.switch_page("pages/margins.py").run()
    assert not app.exception and not app.error
    want = suggest_margins_from_histograms(pair_similarities(x, y), far=1e-3, frr=0.05)
    shown = {m.label: m.value for m in app.metric}
    assert shown["Suggested m⁻"] == f"{want.margin_neg:.3f}" and shown["Suggested m⁺"] == f"{want.margin_pos:.3f}"
    app.button[0].click().run()  # "Use these margins in the sliders above"
    assert app.slider(key="mg_pos").value == round(want.margin_pos, 2)
    assert app.slider(key="mg_neg").value == round(want.margin_neg, 2)
    assert any("Retraining and the margin search need the model" in i.value for i in app.info)


def test_remove_upload_takes_its_pairs(app, tmp_path):
    (x, y), (x2, y2) = clustered(37, n=120, classes=4, dim=6), clustered(38, n=120, classes=4, dim=6)
    upload(app, ("one.npz", npz_bytes(x, y)), ("two.npz", npz_bytes(x2, y2)))
    assert len(uploads.find_upload_pairs(tmp_path)) == 1
    app.multiselect(key="upload_remove").set_value([o for o in app.multiselect(key="upload_remove").options
                                                    if o.startswith("one ")]).run()
    next(b for b in app.button if b.label == "Remove").click().run()
    assert not app.exception
    assert [u.name for u in uploads.find_uploads(tmp_path)] == ["two"] and uploads.find_upload_pairs(tmp_path) == []
    assert any("Removed 1 upload(s) and 1 pair(s)" in s.value for s in app.success)
