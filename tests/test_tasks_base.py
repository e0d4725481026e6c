"""BackgroundTask alone, with a tiny counting task: the outcomes (finished, stopped, failed
with the user's message or one line for a bug), one start only, and what snapshots report."""

import threading
from dataclasses import dataclass

import pytest

from tcm_core.errors import TCMError
from tcm_core.tasks.base import TERMINAL, BackgroundTask, TaskSnapshot, TaskStatus
from tcm_core.training.callbacks import TrainingStopped

TIMEOUT = 10


@dataclass(frozen=True)
class Counted:
    count: int


class Count(BackgroundTask):
    """Counts to ``steps``, reporting each step; waits at ``gate`` (when given) after step 1;
    ``fail`` is raised after step 1."""

    def __init__(self, steps=4, gate=None, fail=None):
        super().__init__("counter", progress=Counted(0))
        self.steps, self.gate, self.fail = steps, gate, fail

    def run(self):
        for i in range(1, self.steps + 1):
            if self.should_stop():
                raise TrainingStopped(f"stopped at {i}")
            self.report(stage=f"step {i}", fraction=i / self.steps, progress=Counted(i))
            if i == 1 and self.gate is not None:
                self.gate.wait(TIMEOUT)
            if i == 1 and self.fail is not None:
                raise self.fail


def test_finishes_and_reports_through_the_snapshot():
    gate = threading.Event()
    task = Count(gate=gate)
    queued = task.snapshot()
    assert queued == TaskSnapshot(TaskStatus.QUEUED, progress=Counted(0)) and not queued.done
    assert task.start() is task
    assert not task.wait(0.05) and not task.done  # still at the gate
    mid = task.snapshot()
    assert mid.status == TaskStatus.RUNNING and (mid.stage, mid.fraction, mid.progress) == ("step 1", 0.25, Counted(1))
    gate.set()
    assert task.wait(TIMEOUT) and task.done
    last = task.snapshot()
    assert last.status == TaskStatus.FINISHED and last.done and last.error is None and last.detail is None
    assert (last.stage, last.fraction, last.progress) == ("finished", 1.0, Counted(4))
    assert last.elapsed > 0 and task.snapshot().elapsed == last.elapsed  # the clock stops at the end


def test_stop_is_honored():
    gate = threading.Event()
    task = Count(gate=gate).start()
    task.stop()
    gate.set()
    assert task.wait(TIMEOUT)
    snap = task.snapshot()
    assert snap.status == TaskStatus.STOPPED and snap.stage == "stopped at 2" and snap.error is None
    assert snap.progress == Counted(1)


def test_user_error_fails_with_its_message():
    task = Count(fail=TCMError("no such folder: /data")).start()
    assert task.wait(TIMEOUT)
    snap = task.snapshot()
    assert snap.status == TaskStatus.FAILED and snap.error == "no such folder: /data" and snap.detail is None


def test_unexpected_error_is_one_line_with_the_traceback_kept():
    task = Count(fail=RuntimeError("tensor on fire\nsecond line")).start()
    assert task.wait(TIMEOUT)
    snap = task.snapshot()
    assert snap.status == TaskStatus.FAILED and snap.status in TERMINAL
    assert snap.error == "unexpected error: RuntimeError: tensor on fire"
    assert "Traceback" in snap.detail and "second line" in snap.detail


def test_second_start_is_refused():
    task = Count().start()
    with pytest.raises(TCMError, match="already started"):
        task.start()
    assert task.wait(TIMEOUT) and task.snapshot().status == TaskStatus.FINISHED


def test_report_takes_only_stage_fraction_progress():
    with pytest.raises(TypeError, match="report takes only"):
        Count().report(status=TaskStatus.FINISHED)


def test_wait_before_start_is_false():
    assert not Count().wait(0)
