"""The queue of background work, in threads (``inline``) for speed: ten sessions asking for the
same training get one training; different configs queue with their positions; ownership; the
run cache and its key; what a restart makes of queue.json; the wait estimate and poll interval
(hand-computed). Worker processes and killing them: test_queue_workers.py."""

import json
import threading
import time

import pytest

from tcm_core.errors import TCMError
from tcm_core.tasks import queue as queue_mod
from tcm_core.tasks import requests, training_job
from tcm_core.tasks.base import BackgroundTask, TaskStatus
from tcm_core.tasks.queue import JobQueue, default_workers, estimate_wait, poll_interval
from tcm_core.tasks.requests import JobRequest, Kind, train_request
from tcm_core.training import TrainConfig, run_cache, runs
from tcm_core.training.callbacks import TrainingStopped

TINY = dict(dataset="digits", epochs=1, batch_size=32, samples_per_class=4, embedding_dim=8,
            loss="multi_similarity", device="cpu", max_train_samples=160, max_test_samples=200)
TIMEOUT = 180  # seconds; generous because the 2 cores may be shared


# ------------------------------------------------------------------ a gated task kind

GATES: dict[str, threading.Event] = {}


class Gated(BackgroundTask):
    """Waits until ``GATES[name]`` is set (stoppable), for tests of scheduling alone."""

    def __init__(self, out):
        super().__init__("gated", progress=None)
        self.name = str(out)

    def run(self):
        while not GATES.setdefault(self.name, threading.Event()).wait(0.02):
            if self.should_stop():
                raise TrainingStopped("stopped while gated")


@pytest.fixture
def gated(monkeypatch, tmp_path):
    monkeypatch.setitem(requests.KINDS, "gated", Kind(lambda a: Gated(a["out"])))
    GATES.clear()
    yield lambda name: JobRequest("gated", {"out": str(tmp_path / name)})
    for gate in GATES.values():
        gate.set()


def wait_status(job, status, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while job.snapshot().status != status and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.snapshot().status == status, (job.snapshot().status, job.snapshot().error)


# ------------------------------------------------------------------ hand-computed pieces

def test_wait_estimate_and_poll_interval_hand_computed():
    # 2 workers free at 10 s and 30 s; a 20 s job ahead takes the one free at 10 s (busy to 30 s):
    # both are free at 30 s
    assert estimate_wait([10.0, 30.0], [20.0], 2) == 30.0
    assert estimate_wait([10.0], [], 2) == 0.0  # an idle worker
    assert estimate_wait([5.0], [7.0, 1.0], 1) == 13.0  # 5 + 7 + 1, one after the other
    assert [poll_interval(n) for n in (1, 2, 4, 10, 40)] == [1.0, 1.0, 2.0, 5.0, 10.0]


def test_workers_from_env_gpus_or_cores(monkeypatch):
    monkeypatch.delenv("TCM_WORKERS", raising=False)
    assert default_workers(0, 2) == 1 and default_workers(0, 16) == 8 and default_workers(4, 16) == 4
    monkeypatch.setenv("TCM_WORKERS", "3")
    assert default_workers(4, 16) == 3
    monkeypatch.setenv("TCM_WORKERS", "many")
    with pytest.raises(TCMError, match="TCM_WORKERS must be a positive whole number; got 'many'"):
        default_workers(0, 2)


def test_unknown_kind_names_the_valid_ones():
    with pytest.raises(TCMError, match="unknown job kind 'bake'; valid kinds: train, retrain, tune, recheck, study"):
        JobRequest("bake", {"out": "x"})


# ------------------------------------------------------------------ the run cache's key

def test_key_changes_with_config_data_and_code(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    (data / "a" / "1.png").write_bytes(b"x")
    config = TrainConfig(**dict(TINY, dataset="folder", data_dir=str(data)))
    key = lambda c, out="o": train_request(c, out).key()  # noqa: E731
    first = key(config)
    assert key(config, out="elsewhere") == first  # where it writes does not change the run
    assert key(config.replace(seed=1)) != first and key(config.replace(lr=0.004)) != first
    assert train_request(config, "o", seeds=(0, 1)).key() != first
    (data / "a" / "2.png").write_bytes(b"y")  # the data changed
    second = key(config)
    assert second != first
    code = tmp_path / "code"
    code.mkdir()
    (code / "m.py").write_text("x = 1\n")
    monkeypatch.setattr(run_cache, "SOURCES", code)
    run_cache.code_version.cache_clear()
    try:
        assert key(config) != second  # another code version
    finally:
        monkeypatch.undo()
        run_cache.code_version.cache_clear()
    assert key(config) == second


# ------------------------------------------------------------------ load: ten sessions, one training

def test_ten_sessions_one_training_then_three_queue_in_order(tmp_path, monkeypatch):
    calls = []
    real_train = training_job.train
    monkeypatch.setattr(training_job, "train", lambda *a, **k: (calls.append(a[1]), real_train(*a, **k))[1])
    q = JobQueue(tmp_path, workers=1, cores=2, gpus=0, inline=True)
    got, gate = [None] * 10, threading.Barrier(10)

    def session(i):  # each session names its own new folder, as the Train page does
        gate.wait()
        got[i] = q.submit(train_request(TrainConfig(**TINY), tmp_path / f"pair-{i}"), f"session-{i}")

    threads = [threading.Thread(target=session, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    job = got[0]
    assert all(j is job for j in got) and job.owners == {f"session-{i}" for i in range(10)}
    others = [q.submit(train_request(TrainConfig(**dict(TINY, seed=s)), tmp_path / f"seed-{s}"), "session-0")
              for s in (1, 2, 3)]
    assert [q.position(j.job_id) for j in others] == [1, 2, 3] and q.position(job.job_id) == 0
    assert [j.snapshot().status for j in others] == [TaskStatus.QUEUED] * 3
    assert job.wait(TIMEOUT) and job.snapshot().status == TaskStatus.FINISHED, job.snapshot().error
    wait_status(others[0], TaskStatus.RUNNING)
    assert [q.position(j.job_id) for j in others] == [0, 1, 2]
    assert q.wait_seconds(others[2].job_id) > 0  # timed from the finished job
    for j in others:
        assert j.wait(TIMEOUT) and j.snapshot().status == TaskStatus.FINISHED, j.snapshot().error
    assert len(calls) == 4 and calls[0] == job.out  # one training for the ten sessions
    for i in range(10):  # every session sees the finished pair among its jobs
        assert job in q.jobs(f"session-{i}") and (job.out / "tcm" / runs.METRICS).is_file()
    again = q.submit(train_request(TrainConfig(**TINY), tmp_path / "later"), "session-11")
    assert again is job and again.done and len(calls) == 4  # a finished run comes back at once
    restarted = JobQueue(tmp_path, workers=1, cores=2, gpus=0, inline=True)  # the cache outlives a restart
    hit = restarted.submit(train_request(TrainConfig(**TINY), tmp_path / "after-restart"), "session-12")
    assert hit.job_id == job.job_id and hit.snapshot().status == TaskStatus.FINISHED and len(calls) == 4


# ------------------------------------------------------------------ ownership

def test_only_owners_stop_and_joined_jobs_keep_going(tmp_path, gated):
    q = JobQueue(tmp_path, workers=1, cores=2, gpus=0, inline=True)
    running = q.submit(gated("a"), "alice")
    queued = q.submit(gated("b"), "alice")
    wait_status(running, TaskStatus.RUNNING)
    with pytest.raises(TCMError, match="belongs to another session"):
        q.stop(running.job_id, "mallory")
    assert q.submit(gated("a"), "bob") is running  # bob joins alice's job
    assert q.stop(running.job_id, "alice") is False  # alice leaves; bob still waits for it
    assert running.owners == {"bob"} and running.snapshot().status == TaskStatus.RUNNING
    assert q.stop(queued.job_id, "alice") is True  # a queued job is cancelled at once
    assert queued.snapshot().status == TaskStatus.STOPPED and queued.snapshot().stage == "cancelled before it started"
    assert q.stop(running.job_id, "bob") is True  # the last owner's Stop ends it
    assert running.wait(TIMEOUT) and running.snapshot().stage == "stopped while gated"
    assert q.stop(running.job_id, "bob") is False  # already ended


# ------------------------------------------------------------------ restart

def test_restart_requeues_queued_and_shows_interrupted_as_stopped(tmp_path, gated):
    before = JobQueue(tmp_path, workers=1, cores=2, gpus=0, inline=True)
    done = before.submit(gated("done"), "alice")
    GATES.setdefault(str(tmp_path / "done"), threading.Event()).set()
    assert done.wait(TIMEOUT) and done.snapshot().status == TaskStatus.FINISHED
    interrupted = before.submit(gated("run"), "alice")
    (tmp_path / "run").mkdir()  # its folder holds something to continue from
    waiting = [before.submit(gated(name), "bob") for name in ("q1", "q2")]
    wait_status(interrupted, TaskStatus.RUNNING)
    saved = json.loads((tmp_path / queue_mod.STATE).read_text())["jobs"]
    assert [e["status"] for e in saved] == ["finished", "running", "queued", "queued"]

    after = JobQueue(tmp_path, workers=1, cores=2, gpus=0, inline=True)  # the server restarted
    restored = {j.job_id: j for j in after.jobs()}
    assert list(restored) == [j.job_id for j in reversed([done, interrupted, *waiting])]
    assert restored[done.job_id].snapshot().status == TaskStatus.FINISHED
    gone = restored[interrupted.job_id]
    assert gone.snapshot().status == TaskStatus.STOPPED and gone.resumable and gone.owners == {"alice"}
    assert gone.snapshot().stage.startswith("interrupted by a server restart")
    first, second = (restored[j.job_id] for j in waiting)
    wait_status(first, TaskStatus.RUNNING)  # queued jobs are back, in order
    assert after.position(second.job_id) == 1
    resumed = after.resume(gone.job_id, "carol")  # anyone may resume after a restart
    assert resumed.job_id != gone.job_id and after.position(resumed.job_id) == 2
    before.shutdown(5)
    after.shutdown(5)


def test_a_damaged_queue_file_never_stops_the_server(tmp_path):
    state = tmp_path / queue_mod.STATE
    state.write_text('{"jobs": [{"id": "a", "request": {"kind": "tr')  # cut short by a full disk
    q = JobQueue(tmp_path, workers=1, cores=2, gpus=0, inline=True)
    assert q.jobs() == [] and "could not be read" in q.notes[0]
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(queue_mod.STATE + ".damaged-")]
    assert len(kept) == 1 and kept[0].read_text().startswith('{"jobs"')  # kept aside, not lost
    state.write_text(json.dumps({"jobs": [{"id": "b", "request": {"kind": "no-such-kind", "args": {}}, "owners": [],
                                           "key": "k", "submitted": 0.0, "status": "queued"}]}))
    q2 = JobQueue(tmp_path, workers=1, cores=2, gpus=0, inline=True)
    assert q2.jobs() == [] and "could not be brought back" in q2.notes[0]
    q.shutdown(5)
    q2.shutdown(5)
