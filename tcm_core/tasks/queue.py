"""One queue for all background work (training pairs, margin retrains, searches, re-checks,
studies), shared by every session of the app server.

A session submits a ``JobRequest`` with its owner id (the app: a uuid in the session's state).
``workers`` jobs run at once, each in its own worker process (``worker.WorkerTask``) with
``cores // workers`` CPU threads (one GPU each when there are GPUs); the rest wait in order, each
with its ``position`` and an estimated wait (``wait_seconds``). Only a job's owners can stop it;
a session closing does not (the job belongs to the queue). A request identical to a queued or
running job joins it (its session becomes an owner too), and one identical to a finished job
returns that job at once (the run cache: ``training.run_cache``). Stop from one of several owners
only leaves the job; the last owner's Stop ends it (a queued job is cancelled).

The queue is saved in ``<runs>/queue.json`` at every change of a job's state. After a server
restart, queued jobs are queued again in their order, jobs that were running show as stopped
("interrupted by a server restart") and resumable when their folder holds a checkpoint, and
finished, stopped and failed jobs are listed as they ended; nothing is dropped.
"""

from __future__ import annotations

import heapq
import json
import os
import threading
import time
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.io import save_json
from tcm_core.tasks.base import TaskStatus
from tcm_core.tasks.requests import KINDS, JobRequest
from tcm_core.tasks.worker import WorkerTask, worker_env

STATE = "queue.json"
WATCH_WINDOW = 25.0  # seconds a session counts as watching after its last poll (polls come every 1-10 s)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers(gpus: int, cores: int) -> int:
    """``$TCM_WORKERS`` when set, else one job per GPU, else one per two CPU cores."""
    text = os.environ.get("TCM_WORKERS", "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise TCMError(f"TCM_WORKERS must be a positive whole number; got {text!r}")
        return int(text)
    return gpus if gpus else max(1, cores // 2)


def estimate_wait(running_left: list[float], ahead: list[float], workers: int) -> float:
    """Seconds until a worker is free for a job, given the seconds left of the running jobs
    and the expected seconds of the jobs queued ahead of it (each takes the first free worker)."""
    free = sorted(list(running_left) + [0.0] * max(0, workers - len(running_left)))
    for seconds in ahead:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return free[0]


def poll_interval(watchers: int) -> float:
    """Seconds between a page's polls: 1 s for one or two sessions, slower as more watch (half a
    second per watcher, at most 10 s), so a classroom's pages leave the cores to training."""
    return min(10.0, max(1.0, 0.5 * watchers))


class QueuedJob(WorkerTask):
    """A ``WorkerTask`` in the queue: its owners (session ids), run-cache key and submission time."""

    def __init__(self, request: JobRequest, owners=(), key: str | None = None, job_id: str | None = None,
                 submitted: float | None = None, inline: bool = False):
        super().__init__(request, job_id, inline=inline)
        self.owners, self.key = set(owners), key or request.key()
        self.submitted = submitted or time.time()
        self.slot: int | None = None  # the worker slot while running
        self.restored = False  # ended before this server started (listed from queue.json)
        self.seconds: float | None = None  # how long it ran, once finished
        self.on_end = None

    def ended(self) -> None:
        if self.on_end is not None:
            self.on_end(self)

    @property
    def resumable(self) -> bool:
        return self.snapshot().status in (TaskStatus.STOPPED, TaskStatus.FAILED) and self.request.can_resume()


class JobQueue:
    """The server's queue (see the module doc); ``root`` holds ``queue.json`` (None: not saved).
    ``inline``: jobs run in threads of this process, not worker processes (quick tests)."""

    def __init__(self, root=None, workers: int | None = None, cores: int | None = None, gpus: int | None = None,
                 inline: bool = False):
        self.inline = inline
        if gpus is None:
            import torch
            gpus = torch.cuda.device_count()
        self.cores, self.gpus = cores or available_cores(), gpus
        self.workers = workers or default_workers(gpus, self.cores)
        self.state = None if root is None else Path(root) / STATE
        self._lock = threading.RLock()
        self._jobs: dict[str, QueuedJob] = {}  # in submission order
        self._watchers: dict[str, float] = {}
        self.notes: list[str] = []  # what the restore could not bring back, said once on the Train page
        if self.state is not None and self.state.is_file():
            self._restore()
        self._schedule()

    # ---- what sessions do
    def submit(self, request: JobRequest, owner: str) -> QueuedJob:
        """Queue ``request`` for ``owner``; an identical queued or running job is joined, an
        identical finished one returned as it is (TCMError for a bad request)."""
        job = QueuedJob(request, {owner}, inline=self.inline)  # built (and checked) outside the lock
        with self._lock:
            same = next((j for j in reversed(self._jobs.values()) if j.key == job.key and self._reusable(j)), None)
            if same is not None:
                same.owners.add(owner)
                self._save()
            else:
                self._add(job)
                self._schedule()  # saves the queue
            return same or job

    def stop(self, job_id: str, owner: str) -> bool:
        """Stop ``owner``'s job; True if it stops, False if other owners keep it going (this
        owner leaves it). TCMError if ``owner`` does not own it."""
        with self._lock:
            job = self.get(job_id)
            if owner not in job.owners:
                raise TCMError(f"job {job_id} belongs to another session: only the sessions that asked for it can stop it")
            if job.done:
                return False
            if len(job.owners) > 1:
                job.owners.discard(owner)
                self._save()
                return False
            if job.settle(TaskStatus.STOPPED, "cancelled before it started"):
                self._save()
            else:
                job.stop()
            return True

    def resume(self, job_id: str, owner: str) -> QueuedJob:
        """Continue a stopped or failed job's folder as a new job of ``owner`` (any session may:
        after a restart the sessions that started it are gone)."""
        job = self.get(job_id)
        if not job.resumable:
            raise TCMError(f"job {job_id} cannot be resumed: it must be stopped or failed with something "
                           f"saved to continue from (a training: its first run's checkpoint)")
        return self.submit(job.request.resumed(), owner)

    def watch(self, owner: str) -> float:
        """Note that ``owner``'s page polls now; the seconds until its next poll."""
        now = time.monotonic()
        with self._lock:
            self._watchers[owner] = now
            self._watchers = {o: t for o, t in self._watchers.items() if now - t < WATCH_WINDOW}  # gone sessions leave
            watching = len(self._watchers)
        return poll_interval(watching)

    # ---- what pages read
    def get(self, job_id: str) -> QueuedJob:
        with self._lock:
            if job_id not in self._jobs:
                raise TCMError(f"no job {job_id!r} in the queue")
            return self._jobs[job_id]

    def jobs(self, owner: str | None = None) -> list[QueuedJob]:
        """All jobs (or ``owner``'s), newest first."""
        with self._lock:
            return [j for j in reversed(self._jobs.values()) if owner is None or owner in j.owners]

    def running(self) -> list[QueuedJob]:
        with self._lock:
            return [j for j in self._jobs.values() if j.snapshot().status == TaskStatus.RUNNING]

    def queued(self) -> list[QueuedJob]:
        with self._lock:
            return [j for j in self._jobs.values() if j.snapshot().status == TaskStatus.QUEUED]

    def position(self, job_id: str) -> int | None:
        """1-based place among the queued jobs; 0 while running; None once ended."""
        job = self.get(job_id)
        status = job.snapshot().status
        if status != TaskStatus.QUEUED:
            return 0 if status == TaskStatus.RUNNING else None
        return [j.job_id for j in self.queued()].index(job_id) + 1

    def wait_seconds(self, job_id: str) -> float | None:
        """Estimated seconds until a queued job starts (0 once running); None when unknown (no
        job of a kind ahead has finished on this server yet to time it)."""
        position = self.position(job_id)
        if not position:
            return None if position is None else 0.0
        left = [self._left(j) for j in self.running()]
        ahead = [self._expected(j.request.kind) for j in self.queued()[:position - 1]]
        if None in left or None in ahead:
            return None
        return estimate_wait(left, ahead, self.workers)

    def _expected(self, kind: str) -> float | None:
        times = [j.seconds for j in self._jobs.values() if j.request.kind == kind and j.seconds]
        return sum(times) / len(times) if times else None

    def _left(self, job: QueuedJob) -> float | None:
        snap = job.snapshot()
        if snap.fraction and snap.fraction >= 0.02:
            return snap.elapsed * (1 - snap.fraction) / snap.fraction
        expected = self._expected(job.request.kind)
        return None if expected is None else max(0.0, expected - snap.elapsed)

    def shutdown(self, wait: float = 60.0) -> None:
        """Stop every job (queued ones are cancelled) and wait for the running ones to end."""
        with self._lock:
            jobs = list(self._jobs.values())
            for job in jobs:
                if not job.settle(TaskStatus.STOPPED, "cancelled: the server stopped"):
                    job.stop()
        for job in jobs:
            job.wait(wait)

    # ---- inside
    def _add(self, job: QueuedJob) -> None:
        job.on_end = self._ended
        self._jobs[job.job_id] = job

    def _reusable(self, job: QueuedJob) -> bool:
        """Joinable (queued or running), or a finished run whose result is still there."""
        status = job.snapshot().status
        if status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
            return True
        cached = not job.restored or KINDS[job.request.kind].result_on_disk
        return status == TaskStatus.FINISHED and cached and job.request.finished_on_disk()

    def _schedule(self) -> None:
        """Start queued jobs, oldest first, while a worker slot is free."""
        with self._lock:
            busy = {j.slot for j in self.running()}
            free = [s for s in range(self.workers) if s not in busy]
            threads, passive = max(1, self.cores // self.workers), self.workers > 1
            for job in self.queued()[:len(free)]:
                job.slot = free.pop(0)
                job.env.update(worker_env(threads, passive, job.slot % self.gpus if self.gpus else None))
                job.start()
            self._save()

    def _ended(self, job: QueuedJob) -> None:  # in the job's thread, after its outcome
        with self._lock:
            snap = job.snapshot()
            job.slot = None
            if snap.status == TaskStatus.FINISHED:
                job.seconds = snap.elapsed
            self._schedule()

    def _save(self) -> None:
        if self.state is None:
            return
        entries = []
        for job in self._jobs.values():
            snap = job.snapshot()
            entries.append(dict(id=job.job_id, request=job.request.to_dict(), key=job.key, owners=sorted(job.owners),
                                submitted=job.submitted, status=snap.status.value, stage=snap.stage, error=snap.error,
                                seconds=job.seconds, pid=job.pid))
        save_json(self.state, {"jobs": entries})

    def _restore(self) -> None:
        """Jobs from ``queue.json`` (see the module doc for what becomes of each)."""
        try:
            entries = list(json.loads(self.state.read_text())["jobs"])
        except (OSError, ValueError, KeyError, TypeError) as exc:  # cut short, or not ours: kept aside, never lost
            kept = self.state.with_name(f"{STATE}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(self.state, kept)
            self.notes.append(f"{STATE} could not be read ({type(exc).__name__}: {exc}); it was kept as {kept.name} "
                              "and the queue started empty (finished runs are still in the runs folder)")
            return
        for e in entries:
            try:
                job = QueuedJob(JobRequest.from_dict(e["request"]), e["owners"], e["key"], e["id"], e["submitted"],
                                inline=self.inline)
                status = TaskStatus(e["status"])
            except (TCMError, KeyError, TypeError, ValueError) as exc:  # e.g. written by another version
                self.notes.append(f"a job in {STATE} could not be brought back and is not listed ({exc})")
                continue
            job.seconds, job.pid = e.get("seconds"), e.get("pid")
            if status == TaskStatus.RUNNING:
                resumable = job.request.can_resume()
                job.settle(TaskStatus.STOPPED, "interrupted by a server restart" + (
                    ": resume it to continue from its last checkpoint" if resumable else ""))
            elif status != TaskStatus.QUEUED:
                job.settle(status, e.get("stage") or status.value, e.get("error"))
                job.restored = True
            self._add(job)
