"""Background tasks: work that runs in a daemon thread while a page stays responsive.

``BackgroundTask`` owns what every such task shares: the thread, the lock, the stop request,
the timing, and the one mapping from how the work ended to a ``TaskStatus`` (``TrainingStopped``:
stopped; ``TCMError``: failed with its message; any other exception: failed, one line for the
user and the traceback for the logs). No exception leaves the thread. A subclass writes only
``run`` (the work), honors ``should_stop()`` and reports with ``report(stage=, fraction=,
progress=)``; pages poll ``snapshot()``, a frozen ``TaskSnapshot`` (cheap, every ~0.5 s).
"""

from __future__ import annotations

import dataclasses
import enum
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from tcm_core.errors import TCMError
from tcm_core.training.callbacks import TrainingStopped


class TaskFailed(TCMError):
    """A failure reported from elsewhere (a worker process): its message, and the traceback of
    an unexpected error there (``detail``) for the logs."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail


class TaskStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"


TERMINAL = frozenset({TaskStatus.FINISHED, TaskStatus.STOPPED, TaskStatus.FAILED})
REPORTED = frozenset({"stage", "fraction", "progress"})  # what the work may report


@dataclass(frozen=True)
class TaskSnapshot:
    """A task's state at one moment (plain data, no locks)."""

    status: TaskStatus
    stage: str = ""  # what it is doing now, in words
    fraction: float | None = None  # share of the whole task done, 0..1; None: unknown
    error: str | None = None  # for the user: a TCMError's message, or one line for a bug
    elapsed: float = 0.0  # seconds since the start, frozen at the end
    detail: str | None = None  # the traceback of an unexpected error, for the logs
    progress: Any = None  # the task's own frozen progress data (see each task), or None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


class BackgroundTask:
    """One piece of work in a daemon thread: ``start`` / ``stop`` / ``wait`` / ``snapshot``.

    A template: subclasses implement ``run`` and may override ``ended`` (called in the thread
    once the outcome is recorded, e.g. to save a summary). ``name`` names the thread and errors.
    """

    def __init__(self, name: str = "task", progress: Any = None):
        self.task_name = name
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread: threading.Thread | None = None
        self._started = self._ended = None  # time.monotonic() of the start and the end
        self._state = TaskSnapshot(TaskStatus.QUEUED, progress=progress)

    def run(self) -> None:
        """The work, in the thread; raise ``TrainingStopped`` once ``should_stop()`` says so."""
        raise NotImplementedError

    def ended(self) -> None:  # hook: called in the thread after the outcome is recorded
        pass

    def start(self):
        """Start the thread (once); returns the task."""
        with self._lock:  # started under the lock, so ``wait`` never sees an unstarted thread
            if self._thread is not None:
                raise TCMError(f"{self.task_name} was already started")
            self._thread = threading.Thread(target=self._main, name=self.task_name, daemon=True)
            self._started = time.monotonic()
            self._set(status=TaskStatus.RUNNING, stage="starting")
            self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the work to stop at its next check of ``should_stop()``."""
        self._stop.set()

    def settle(self, status: TaskStatus, stage: str, error: str | None = None) -> bool:
        """End a task that never started, with ``status`` and ``stage`` saying why (a queued job
        cancelled; a job restored after a server restart); False if it had started or ended."""
        if status not in TERMINAL:
            raise ValueError(f"settle needs an end status; got {status}")
        with self._lock:
            if self._thread is not None or self.done:
                return False
            self._set(status=status, stage=stage, error=error, fraction=1.0 if status == TaskStatus.FINISHED else None)
            return True

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task ends (or ``timeout`` seconds); True if it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done

    @property
    def done(self) -> bool:
        return self._state.status in TERMINAL

    def snapshot(self) -> TaskSnapshot:
        with self._lock:
            end = self._ended or time.monotonic()
            return dataclasses.replace(self._state, elapsed=end - self._started if self._started else 0.0)

    def report(self, **changes) -> None:
        """From the work: any of ``stage``, ``fraction`` and ``progress``."""
        if not REPORTED.issuperset(changes):
            raise TypeError(f"report takes only {sorted(REPORTED)}; got {sorted(changes)}")
        with self._lock:
            self._set(**changes)

    def _main(self) -> None:
        outcome: dict = dict(status=TaskStatus.FAILED, error=f"{self.task_name} ended without a result")
        try:
            self.run()
            outcome = dict(status=TaskStatus.FINISHED, stage="finished", fraction=1.0)
        except TrainingStopped as exc:
            outcome = dict(status=TaskStatus.STOPPED, stage=str(exc) or "stopped")
        except TCMError as exc:
            outcome = dict(status=TaskStatus.FAILED, error=str(exc), detail=getattr(exc, "detail", None))
        except Exception as exc:  # a bug: one line for the page, the traceback for the logs
            first = (str(exc).splitlines() or [""])[0]
            outcome = dict(status=TaskStatus.FAILED, error=f"unexpected error: {type(exc).__name__}: {first}",
                           detail=traceback.format_exc())
        finally:
            with self._lock:
                self._ended = time.monotonic()
                self._set(**outcome)
            self.ended()

    def _set(self, **changes) -> None:  # callers hold the lock
        self._state = dataclasses.replace(self._state, **changes)
