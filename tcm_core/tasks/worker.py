"""Work in a worker process: a ``WorkerTask`` runs a ``JobRequest`` in its own Python process
(``python -m tcm_core.tasks.worker``), so training never shares the app server's interpreter
(its GIL, its sessions' polling) and a crash cannot take the server down.

The parent sends the request as one JSON line on the child's stdin, then ``stop`` lines; the
child sends its task's ``TaskSnapshot`` (pickled, only our own process reads it) on stdout
whenever it changed, at most every ``SEND_EVERY`` seconds, and the last one when the task ends.
The parent's thread mirrors each into its own snapshot, so pages poll a local copy (cheap). The
child stops its task when its stdin closes: a worker never outlives the server that started it.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from tcm_core.tasks.base import BackgroundTask, TaskFailed, TaskStatus
from tcm_core.tasks.requests import JobRequest
from tcm_core.training.callbacks import TrainingStopped

SEND_EVERY = 0.25  # seconds between the child's snapshots (when something changed)
PROJECT = Path(__file__).resolve().parents[2]


def worker_env(threads: int, passive: bool, gpu: int | None = None) -> dict[str, str]:
    """Environment of a worker: ``threads`` CPU threads (OpenMP, MKL, torch), OpenMP threads
    that sleep instead of spinning when several workers share the cores (``passive``: busy-wait
    makes concurrent trainings starve each other), and one GPU when ``gpu`` is given."""
    env = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TCM_WORKER_THREADS")}
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return env


class WorkerTask(BackgroundTask):
    """A ``JobRequest`` run in a worker process; ``env`` adds to the worker's environment.
    ``inline``: in a thread of this process instead (the same mirroring; for quick tests of what
    schedules jobs, and where starting processes is not wanted)."""

    def __init__(self, request: JobRequest, job_id: str | None = None, env: dict | None = None,
                 inline: bool = False):
        self.request, self.job_id, self.env = request, job_id or uuid.uuid4().hex[:8], dict(env or {})
        self.inline = inline
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._pipe = threading.Lock()
        super().__init__(f"{request.kind} job {self.job_id}", progress=request.build().snapshot().progress)

    @property
    def out(self) -> Path:
        return self.request.out

    def run(self) -> None:
        _outcome(*(self._run_inline() if self.inline else self._run_process()))

    def _run_inline(self):
        task = self.request.build().start()
        while True:
            ended = task.wait(SEND_EVERY)
            if self.should_stop():
                task.stop()
            snap = task.snapshot()
            self.report(stage=snap.stage, fraction=snap.fraction, progress=snap.progress)
            if ended:
                return snap, 0

    def _run_process(self):
        path = os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, **self.env, "PYTHONPATH": path}
        with self._pipe:
            self._proc = subprocess.Popen([sys.executable, "-m", "tcm_core.tasks.worker"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, env=env)
            self.pid = self._proc.pid
            self._proc.stdin.write((json.dumps(self.request.to_dict()) + "\n").encode())
            self._proc.stdin.flush()
        if self.should_stop():
            self._send("stop")
        last = None
        while True:
            try:
                last = pickle.load(self._proc.stdout)
            except (EOFError, pickle.UnpicklingError):
                break
            self.report(stage=last.stage, fraction=last.fraction, progress=last.progress)
        return last, self._proc.wait()

    def stop(self) -> None:
        super().stop()
        self._send("stop")

    def _send(self, line: str) -> None:
        with self._pipe:
            if self._proc is not None and self._proc.poll() is None:
                try:
                    self._proc.stdin.write((line + "\n").encode())
                    self._proc.stdin.flush()
                except (BrokenPipeError, OSError):
                    pass  # it just ended


def _outcome(last, code: int) -> None:
    """Raise what the child's last snapshot says (``BackgroundTask`` maps it to the status)."""
    if last is None or not last.done:
        raise TaskFailed(f"the worker process ended unexpectedly (exit code {code}); "
                         f"a training can be resumed from its last checkpoint")
    if last.status == TaskStatus.STOPPED:
        raise TrainingStopped(last.stage)
    if last.status == TaskStatus.FAILED:
        raise TaskFailed(last.error, last.detail)


# ---------------------------------------------------------------- the child's side

def _listen(stdin, task) -> None:
    """Stop the task on a ``stop`` line, or when stdin closes (the server is gone)."""
    for line in stdin:
        if line.strip() == b"stop":
            task.stop()
    task.stop()


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")  # the snapshot channel; prints go to stderr
    os.dup2(2, 1)
    if threads := os.environ.get("TCM_WORKER_THREADS"):
        import torch
        torch.set_num_threads(int(threads))
    request = JobRequest.from_dict(json.loads(sys.stdin.buffer.readline()))
    task = request.build().start()
    threading.Thread(target=_listen, args=(sys.stdin.buffer, task), daemon=True).start()
    sent = None
    while True:
        ended = task.wait(SEND_EVERY)
        snap = task.snapshot()
        state = (snap.status, snap.stage, snap.fraction, snap.progress, snap.error)
        if state != sent or ended:
            try:
                pickle.dump(snap, out)
                out.flush()
            except (BrokenPipeError, OSError):
                task.stop()  # the server is gone: end at the next step, keep the checkpoint
            sent = state
        if ended:
            if snap.detail:
                print(snap.detail, file=sys.stderr)
            sys.stderr.flush()
            os._exit(0)  # at once: the stdin reader is still blocked in its read


if __name__ == "__main__":
    main()
