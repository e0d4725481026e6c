"""The Train page over the queue, as AppTests: the classroom form; two sessions, where only the
owner sees Stop, the other watches, and the job outlives its session."""

import gc

from streamlit.testing.v1 import AppTest

from conftest import ROOT

APP = str(ROOT / "app.py")
TINY = dict(dataset="digits", dim=8, epochs=1, max_train=160, batch=32, per_class=4)


def train_page():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/train.py")
    return at.run()


def labels(at):
    return [b.label for b in at.button]


def test_classroom_form_keeps_what_a_lesson_changes(monkeypatch, tmp_path):
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("TCM_CLASSROOM", "1")
    at = train_page()
    assert not at.exception
    assert [s.label for s in at.selectbox if not s.label.startswith("Run (")] == ["Base loss"]
    assert [s.label for s in at.slider] == ["m⁺ (margin_pos)", "m⁻ (margin_neg)"]
    assert [n.label for n in at.number_input] == ["Seed"] and not at.text_input
    assert any("1 epoch" in c.value for c in at.caption)  # the rest at the defaults, said once


def test_only_the_owner_can_stop_and_the_job_outlives_its_session(monkeypatch, tmp_path):
    monkeypatch.setenv("TCM_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("TCM_CLASSROOM", raising=False)
    owner = train_page()
    for key, value in TINY.items():
        (owner.selectbox if key == "dataset" else owner.number_input)(key=key).set_value(value)
    owner.selectbox(key="loss").set_value("multi_similarity")
    owner.selectbox(key="device").set_value("cpu")
    owner.button[0].click().run()  # the form's submit button
    assert not owner.exception and "Stop" in labels(owner)
    job_id = owner.session_state["job_id"]

    watcher = train_page()  # another session: it watches the newest job, without a Stop button
    assert not watcher.exception and "Stop" not in labels(watcher)
    assert any("digits" in s.value for s in watcher.subheader)
    from pages._common import job_manager

    queue = job_manager()
    del owner  # the owner's session closes
    gc.collect()
    job = queue.get(job_id)
    assert job.wait(180) and job.snapshot().status == "finished", job.snapshot().error
    watcher.run()
    watcher.run()
    assert not watcher.exception and any("finished" in s.value for s in watcher.subheader)
