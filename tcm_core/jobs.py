"""Background training jobs: what the app's Train page starts, polls, stops and resumes.

A ``TrainingJob`` runs ``training.train`` in a daemon thread and records the engine's callbacks
under a lock; the page reads plain, frozen ``JobSnapshot``s (cheap, every ~0.5 s from an
``st.fragment``). No exception leaves the thread: it becomes a ``failed`` or ``stopped`` status.
``JobManager`` is the one registry the app shares across sessions (``st.cache_resource``);
it runs one job at a time because CPU training saturates the cores.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.training import runs
from tcm_core.training.callbacks import Callback, TrainingStopped
from tcm_core.training.config import TrainConfig
from tcm_core.training.engine import train


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"


TERMINAL = (JobStatus.FINISHED, JobStatus.STOPPED, JobStatus.FAILED)


@dataclass(frozen=True)
class RunProgress:
    """One run of a job: ``epoch`` is the 0-based epoch in progress, ``step`` its last step;
    ``records`` holds every finished epoch's dict (earlier ones too, when resumed)."""

    run: str
    epochs: int
    steps_per_epoch: int = 0
    epoch: int = 0
    step: int = 0
    loss: float | None = None
    records: tuple[dict, ...] = ()
    finished: bool = False

    @property
    def fraction(self) -> float:
        """Share of the whole run done, 0..1 (steps of all epochs)."""
        if self.finished:
            return 1.0
        total = self.epochs * self.steps_per_epoch
        return min(1.0, (self.epoch * self.steps_per_epoch + self.step) / total) if total else 0.0


@dataclass(frozen=True)
class JobSnapshot:
    """What the page draws: a copy of a job's state at one moment (plain data, no locks).

    ``error`` is for the user (a ``TCMError``'s message, or one line for a bug); ``detail``
    keeps the traceback of an unexpected error for the logs.
    """

    job_id: str
    status: JobStatus
    out: Path
    config: TrainConfig
    compare: bool
    stage: str = ""
    stage_fraction: float | None = None
    runs: dict[str, RunProgress] = field(default_factory=dict)
    error: str | None = None
    detail: str | None = None
    started: float | None = None
    finished: float | None = None
    elapsed: float = 0.0


def run_names(config: TrainConfig, compare: bool) -> list[str]:
    """The engine's plan: baseline then tcm with ``compare``, else the one run."""
    return list(runs.PAIR) if compare else ["tcm" if config.tcm else "baseline"]


class TrainingJob(Callback):
    """One call of ``train`` in a background thread; it is its own (recording) callback."""

    def __init__(self, config: TrainConfig, out, compare: bool = True, resume: bool = False):
        self.job_id, self.config, self.out = uuid.uuid4().hex[:8], config, Path(out)
        self.compare, self.resumed = compare, resume
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread: threading.Thread | None = None
        self._state = JobSnapshot(self.job_id, JobStatus.QUEUED, self.out, config, compare,
                                  runs={n: RunProgress(n, config.epochs) for n in run_names(config, compare)})

    def run_dir(self, name: str) -> Path:
        return self.out / name if self.compare else self.out

    def start(self) -> "TrainingJob":
        with self._lock:
            if self._thread is not None:
                raise TCMError(f"job {self.job_id} was already started")
            self._thread = threading.Thread(target=self._main, name=f"train-{self.job_id}", daemon=True)
            self._set(status=JobStatus.RUNNING, started=time.time(), stage="starting")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the loop to stop before its next step; the last finished epoch stays on disk."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (or ``timeout`` seconds); True if it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done

    @property
    def done(self) -> bool:
        return self._state.status in TERMINAL

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            s = self._state
            end = s.finished or time.time()
            return dataclasses.replace(s, runs=dict(s.runs), elapsed=end - s.started if s.started else 0.0)

    @property
    def resumable(self) -> bool:
        """Stopped or failed after the first run of the plan saved a checkpoint (a later run
        without one starts fresh when resumed)."""
        first = next(iter(self._state.runs), None)
        return (self._state.status in (JobStatus.STOPPED, JobStatus.FAILED) and first is not None
                and (self.run_dir(first) / runs.CHECKPOINT).is_file())

    def resume(self, start: bool = True) -> "TrainingJob":
        """A new job that continues this one's folder from its checkpoints (started by default)."""
        if not self.resumable:
            raise TCMError(f"job {self.job_id} cannot be resumed: it must be stopped or failed after "
                           f"its first run finished at least one epoch")
        job = TrainingJob(self.config, self.out, self.compare, resume=True)
        return job.start() if start else job

    def _main(self) -> None:
        outcome: dict = dict(status=JobStatus.FAILED, error="training ended without a result")
        try:
            train(self.config, self.out, compare=self.compare, resume=self.resumed, callback=self)
            outcome = dict(status=JobStatus.FINISHED, stage="finished", error=None)
        except TrainingStopped as exc:
            outcome = dict(status=JobStatus.STOPPED, stage=str(exc), error=None)
        except TCMError as exc:
            outcome = dict(error=str(exc), status=JobStatus.FAILED)
        except Exception as exc:  # a bug: one line for the page, the traceback for the logs
            first = (str(exc).splitlines() or [""])[0]
            outcome = dict(status=JobStatus.FAILED, error=f"unexpected error: {type(exc).__name__}: {first}",
                           detail=traceback.format_exc())
        finally:
            with self._lock:
                self._set(finished=time.time(), **outcome)

    def _set(self, **changes) -> None:  # callers hold the lock
        self._state = dataclasses.replace(self._state, **changes)

    def _update_run(self, name: str, **changes) -> None:
        with self._lock:
            old = self._state.runs.get(name) or RunProgress(name, self.config.epochs)
            self._set(runs={**self._state.runs, name: dataclasses.replace(old, **changes)})

    def on_stage(self, text: str, done: int = 0, total: int = 0) -> None:
        with self._lock:
            self._set(stage=text, stage_fraction=done / total if total else None)

    def on_run_start(self, run: str, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        earlier = ()
        if start_epoch:  # resumed: show the epochs trained before, from the run's metrics.json
            try:
                earlier = tuple(runs.load_metrics(self.run_dir(run)).get("history", ())[:start_epoch])
            except TCMError:  # checkpoint written but not metrics: the history just starts later
                pass
        self._update_run(run, epochs=epochs, steps_per_epoch=steps_per_epoch, epoch=start_epoch,
                         step=0, records=earlier, finished=start_epoch >= epochs)
        with self._lock:
            self._set(stage=f"training {run}", stage_fraction=None)

    def on_step(self, run: str, epoch: int, step: int, steps: int, loss: float) -> None:
        self._update_run(run, epoch=epoch, step=step, steps_per_epoch=steps, loss=float(loss))

    def on_epoch_end(self, run: str, record: dict) -> None:
        records = self._state.runs[run].records + (dict(record),)  # only this thread writes runs
        self._update_run(run, epoch=record["epoch"], step=0, records=records)

    def on_run_end(self, run: str, metrics: dict) -> None:
        self._update_run(run, finished=True)

    def should_stop(self) -> bool:
        return self._stop.is_set()


class JobManager:
    """Thread-safe registry of jobs, shared by every session; ``max_running`` at a time."""

    def __init__(self, max_running: int = 1):
        self.max_running = max_running
        self._lock = threading.Lock()
        self._jobs: dict[str, TrainingJob] = {}

    def submit(self, config: TrainConfig, out, compare: bool = True, resume: bool = False) -> TrainingJob:
        """Start a job training into ``out`` exactly; refuses while ``max_running`` jobs run."""
        return self._start(TrainingJob(config, out, compare, resume))

    def resume(self, job_id: str) -> TrainingJob:
        """Continue a stopped or failed job's folder as a new job."""
        return self._start(self.get(job_id).resume(start=False))

    def _start(self, job: TrainingJob) -> TrainingJob:
        with self._lock:  # check and start at once, so two sessions cannot both start one
            if len(self._active()) >= self.max_running:
                raise TCMError("a training job is already running; stop it or wait")
            self._jobs[job.job_id] = job
            return job.start()

    def get(self, job_id: str) -> TrainingJob:
        with self._lock:
            if job_id not in self._jobs:
                raise TCMError(f"no training job {job_id!r}; it may belong to an earlier app session")
            return self._jobs[job_id]

    def jobs(self) -> list[TrainingJob]:
        """All jobs, newest first."""
        with self._lock:
            return list(reversed(self._jobs.values()))

    def active(self) -> list[TrainingJob]:
        with self._lock:
            return self._active()

    def _active(self) -> list[TrainingJob]:
        return [j for j in self._jobs.values() if not j.done]
