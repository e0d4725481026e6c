"""Background training jobs on the 8x8 digits: progress snapshots, stop/resume and errors (the
queue that schedules them: test_queue.py)."""

import dataclasses
import json
import time

import pytest

from tcm_core.errors import TCMError
from tcm_core.tasks import training_job as jobs
from tcm_core.tasks.base import TERMINAL, TaskStatus
from tcm_core.tasks.training_job import RunProgress, TrainingJob, TrainingProgress
from tcm_core.training import TrainConfig, runs, train
from tcm_core.training.records import EpochRecord

FAST = dict(dataset="digits", epochs=2, batch_size=32, samples_per_class=4, embedding_dim=8,
            loss="multi_similarity", device="cpu", max_train_samples=400, max_test_samples=300)
TIMEOUT = 120  # seconds; generous because the 2 cores may be shared


def poll(job, every=0.05):
    """Snapshots every ``every`` seconds until the job ends, as the page's fragment would."""
    seen, deadline = [], time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        seen.append(job.snapshot())
        if seen[-1].status in TERMINAL:
            return seen
        time.sleep(every)
    job.stop()
    pytest.fail(f"job still {seen[-1].status} after {TIMEOUT} s")


def test_fraction_hand_computed():
    # epoch 1 (0-based) of 2, step 5 of 10: (1 * 10 + 5) / (2 * 10) = 0.75
    assert RunProgress("tcm", epochs=2, steps_per_epoch=10, epoch=1, step=5).fraction == 0.75
    assert RunProgress("tcm", epochs=2).fraction == 0.0  # steps not known yet
    assert RunProgress("tcm", epochs=2, steps_per_epoch=10, finished=True).fraction == 1.0
    both = TrainingProgress((RunProgress("baseline", 2, 10, finished=True), RunProgress("tcm", 2, 10, epoch=1, step=5)))
    assert both.fraction == (1.0 + 0.75) / 2 and both.run("tcm").step == 5 and both.run("nope") is None


def test_epoch_records_are_typed_whether_the_engine_sends_dicts_or_records(tmp_path):
    job = TrainingJob(TrainConfig(**FAST), tmp_path / "x", compare=False)  # callbacks only, no thread
    record = EpochRecord(1, 0.5, 0.5, 0.0, 10, 0.9, 0.8, 0.01, 0.02, 0.1, 1.2, 3.0)
    job.on_run_start("baseline", 2, 10, 0)
    job.on_epoch_end("baseline", record.to_dict())
    job.on_epoch_end("baseline", dataclasses.replace(record, epoch=2))
    run = job.snapshot().progress.run("baseline")
    assert run.records == (record, dataclasses.replace(record, epoch=2)) and run.epoch == 2


def test_compare_job_reports_progress_and_finishes(tmp_path):
    out = tmp_path / "pair"
    job = TrainingJob(TrainConfig(**FAST), out, compare=True)
    assert job.snapshot().status == TaskStatus.QUEUED and job.snapshot().elapsed == 0.0
    seen = poll(job.start())
    last = seen[-1]
    assert last.status == TaskStatus.FINISHED and last.error is None and job.done and last.done
    assert [r.run for r in last.progress.runs] == ["baseline", "tcm"]  # plan order
    for name in ("baseline", "tcm"):
        fractions = [s.progress.run(name).fraction for s in seen]
        assert all(a <= b for a, b in zip(fractions, fractions[1:])), fractions
        assert fractions[-1] == 1.0 and any(0 < f < 1 for f in fractions)  # seen mid-run
        run = last.progress.run(name)
        assert run.finished and run.steps_per_epoch > 0 and run.loss > 0
        assert [r.epoch for r in run.records] == [1, 2]
        assert all(0 <= r.recall_at_1 <= 1 and 0 <= r.opis for r in run.records)
        saved = json.loads((out / name / runs.METRICS).read_text())
        assert saved["history"] == [pytest.approx(r.to_dict()) for r in run.records]
    overall = [s.fraction for s in seen if s.fraction is not None]
    assert all(a <= b for a, b in zip(overall, overall[1:])) and overall[-1] == 1.0
    assert last.stage == "finished" and last.elapsed > 0
    assert job.wait(0) and job.snapshot().elapsed == last.elapsed  # the clock stops at the end


def test_stop_then_resume_keeps_history(tmp_path):
    out = tmp_path / "run"
    job = TrainingJob(TrainConfig(**dict(FAST, epochs=3)), out, compare=False)
    record_epoch = job.on_epoch_end
    job.on_epoch_end = lambda run, record: (record_epoch(run, record), job.stop())  # after epoch 1
    job.start()
    assert job.wait(TIMEOUT)
    stopped = job.snapshot()
    assert stopped.status == TaskStatus.STOPPED and stopped.error is None
    assert "stopped during epoch 2" in stopped.stage and job.resumable
    assert [r.epoch for r in stopped.progress.run("baseline").records] == [1]
    first = stopped.progress.run("baseline").records[0]

    again = job.resume()
    assert again.job_id != job.job_id and again.out == out and again.resumed
    last = poll(again)[-1]
    assert last.status == TaskStatus.FINISHED, last.error
    records = last.progress.run("baseline").records
    assert [r.epoch for r in records] == [1, 2, 3] and records[0].to_dict() == pytest.approx(first.to_dict())
    assert [h["epoch"] for h in runs.load_metrics(out)["history"]] == [1, 2, 3]
    with pytest.raises(TCMError, match="cannot be resumed"):
        again.resume()  # finished jobs have nothing to continue


def test_bad_config_fails_with_the_users_message(tmp_path):
    config = TrainConfig(**dict(FAST, dataset="folder", data_dir="/nonexistent"))
    with pytest.raises(TCMError) as direct:
        train(config, tmp_path / "direct")
    job = TrainingJob(config, tmp_path / "bad").start()
    assert job.wait(TIMEOUT)
    snap = job.snapshot()
    assert snap.status == TaskStatus.FAILED and snap.error == str(direct.value) and snap.detail is None
    assert not job.resumable


def test_unexpected_error_is_one_line_with_traceback_kept(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("tensor on fire\nsecond line")

    monkeypatch.setattr(jobs, "train", broken)
    job = TrainingJob(TrainConfig(**FAST), tmp_path / "x").start()
    assert job.wait(TIMEOUT)
    snap = job.snapshot()
    assert snap.status == TaskStatus.FAILED
    assert snap.error == "unexpected error: RuntimeError: tensor on fire"
    assert "Traceback" in snap.detail and "second line" in snap.detail
