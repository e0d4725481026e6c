"""Faults with real worker processes: a killed worker leaves a failed, resumable job whose folder
continues; a killed server (the queue's host process) leaves queue.json saying "running", its
worker ends itself, and the restarted queue shows the job as stopped and resumable, with the run
folder intact. Both trainings are the 8x8 digits, a few steps."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT

from tcm_core.tasks.base import TaskStatus
from tcm_core.tasks.queue import STATE, JobQueue
from tcm_core.tasks.requests import train_request
from tcm_core.training import TrainConfig, runs

ONE_RUN = dict(dataset="digits", epochs=4, batch_size=32, samples_per_class=4, embedding_dim=8,
               loss="multi_similarity", device="cpu", max_train_samples=400, max_test_samples=200)
TIMEOUT = 180


def wait_for(check, timeout=TIMEOUT, every=0.05):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped counts as ended)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def finish_resumed(q, job, owner):
    again = q.resume(job.job_id, owner)
    assert again.wait(TIMEOUT) and again.snapshot().status == TaskStatus.FINISHED, again.snapshot().error
    assert [h["epoch"] for h in runs.load_metrics(job.out)["history"]] == [1, 2, 3, 4]
    return again


def test_killed_worker_fails_the_job_and_it_resumes(tmp_path):
    q = JobQueue(tmp_path, workers=1, cores=2, gpus=0)
    job = q.submit(train_request(TrainConfig(**ONE_RUN), tmp_path / "run", compare=False), "alice")
    wait_for(lambda: (job.out / runs.CHECKPOINT).is_file())
    assert job.pid != os.getpid() and alive(job.pid)  # the work runs in its own process
    os.kill(job.pid, signal.SIGKILL)
    assert job.wait(TIMEOUT)
    snap = job.snapshot()
    assert snap.status == TaskStatus.FAILED and "worker process ended unexpectedly" in snap.error
    assert job.resumable and snap.progress.run("baseline").step > 0  # the progress it reported
    finish_resumed(q, job, "alice")


HOST = """
import sys, time
from tcm_core.tasks.queue import JobQueue
from tcm_core.tasks.requests import train_request
from tcm_core.training import TrainConfig, runs
q = JobQueue(sys.argv[1], workers=1, cores=2, gpus=0)
job = q.submit(train_request(TrainConfig(**{config}), sys.argv[1] + "/run", compare=False), "alice")
while not (job.out / runs.CHECKPOINT).is_file():
    time.sleep(0.05)
print("checkpoint", flush=True)
time.sleep(600)
"""


def test_killed_server_leaves_a_resumable_job(tmp_path):
    host = subprocess.Popen([sys.executable, "-c", HOST.format(config=ONE_RUN), str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert host.stdout.readline().strip() == "checkpoint"
    finally:
        host.kill()  # SIGKILL: nothing of the server runs after this
        host.wait()
    saved = json.loads((tmp_path / STATE).read_text())["jobs"]
    assert [e["status"] for e in saved] == ["running"]
    wait_for(lambda: not alive(saved[0]["pid"]))  # its worker saw the server go and ended itself
    run = tmp_path / "run"
    assert runs.load_config(run) == TrainConfig(**ONE_RUN).replace(tcm=False)  # the folder is intact
    done = runs.load_metrics(run)["epochs_done"]
    assert runs.load_checkpoint(run)["epoch"] == done >= 1

    q = JobQueue(tmp_path, workers=1, cores=2, gpus=0, inline=True)  # the server starts again
    job = q.get(saved[0]["id"])
    snap = job.snapshot()
    assert snap.status == TaskStatus.STOPPED and snap.stage.startswith("interrupted by a server restart")
    assert job.resumable and job.owners == {"alice"}
    finish_resumed(q, job, "alice")
