"""A study in the background: ``experiments.study.run_study`` in a ``BackgroundTask``.

``StudyTask(spec, out)`` is its own study callback: its snapshot's ``progress`` is a
``StudyProgress`` (cells done of all, the cell in progress, the run in progress as a
``RunProgress``) and its ``fraction`` is the whole study's. ``stop()`` ends the run in progress
at its next step (its last checkpoint stays); a new ``StudyTask`` on the same folder (or
``resume()``) continues where it stopped, keeping every finished run.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.experiments.study import StudyCallback, StudySpec, load_spec, run_study
from tcm_core.tasks.base import BackgroundTask, TaskStatus
from tcm_core.tasks.training_job import RunProgress
from tcm_core.training.records import EpochRecord


@dataclass(frozen=True)
class StudyProgress:
    """Where a study is: ``cells_done`` of ``cells_total`` finished; ``cell`` (``<loss>-bs<batch>``)
    in progress, ``cell_index`` its 1-based number (0 before the first); ``run`` the run in
    progress (names like ``multi_similarity-bs32/seed-0/tcm``; its ``fraction`` is the run's
    share done) and ``run_index`` its 0-based place among the ``runs_per_cell`` runs of its cell
    (baseline, +TCM per seed); ``stage_fraction`` the done share of a preparation stage with a
    count (backbone features), else None."""

    cells_total: int
    runs_per_cell: int
    cells_done: int = 0
    cell: str | None = None
    cell_index: int = 0
    run: RunProgress | None = None
    run_index: int = 0
    stage_fraction: float | None = None

    @property
    def cell_fraction(self) -> float:
        """Share of the cell in progress done, 0..1 (seeds kept from before count as done)."""
        if self.run is None or not self.runs_per_cell:
            return 0.0
        return min(1.0, (self.run_index + self.run.fraction) / self.runs_per_cell)

    @property
    def fraction(self) -> float:
        """Share of the whole study done, 0..1."""
        if not self.cells_total:
            return 0.0
        return min(1.0, (self.cells_done + self.cell_fraction) / self.cells_total)


class StudyTask(BackgroundTask, StudyCallback):
    """``run_study(spec, out)`` in the background; ``table`` is its result once finished."""

    def __init__(self, spec: StudySpec, out):
        if not isinstance(spec, StudySpec):
            raise TCMError(f"a study task needs a StudySpec; got {type(spec).__name__}")
        self.task_id, self.spec, self.out = uuid.uuid4().hex[:8], spec, Path(out)
        self.table = None
        self._seeds = {f"seed-{s}": i for i, s in enumerate(spec.seeds)}
        progress = StudyProgress(cells_total=len(spec.cells), runs_per_cell=2 * len(spec.seeds))
        super().__init__(f"study {self.out.name or self.out}", progress=progress)

    @classmethod
    def from_folder(cls, out) -> StudyTask:
        """A task that continues the study in ``out`` with its own ``study.json`` (not started)."""
        return cls(load_spec(out), out)

    def run(self) -> None:
        self.table = run_study(self.spec, self.out, callback=self)

    def resume(self, start: bool = True) -> StudyTask:
        """A new task on the same folder (started by default); finished runs are kept."""
        if self.snapshot().status not in (TaskStatus.STOPPED, TaskStatus.FAILED):
            raise TCMError(f"study task {self.task_id} cannot be resumed: it has not stopped or failed")
        task = StudyTask(self.spec, self.out)
        return task.start() if start else task

    # ---- study and engine callbacks (in the task's thread, the only writer of its progress)
    def _progress(self) -> StudyProgress:
        return self.snapshot().progress

    def _update(self, stage: str | None = None, **changes) -> None:
        progress = dataclasses.replace(self._progress(), **changes)
        report = dict(progress=progress, fraction=progress.fraction)
        if stage is not None:
            report["stage"] = stage
        self.report(**report)

    def on_cell_start(self, cell: str, index: int, total: int) -> None:
        self._update(cell=cell, cell_index=index, run=None, run_index=0, stage_fraction=None)

    def on_cell_end(self, cell: str, index: int, total: int) -> None:
        self._update(cells_done=index, run=None, run_index=0)

    def on_stage(self, text: str, done: int = 0, total: int = 0) -> None:
        self._update(stage=text, stage_fraction=done / total if total else None)

    def on_run_start(self, run: str, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        current = RunProgress(run, epochs, steps_per_epoch, epoch=start_epoch, finished=start_epoch >= epochs)
        self._update(stage=f"training {run}", run=current, run_index=self._run_index(run),
                     stage_fraction=None)

    def _run_index(self, run: str) -> int:
        """``<cell>/seed-<n>/<side>`` -> its place in the cell's plan (baseline, tcm per seed)."""
        parts = run.split("/")
        seed = self._seeds.get(parts[-2], 0) if len(parts) >= 2 else 0
        return 2 * seed + (1 if parts[-1] == "tcm" else 0)

    def _update_run(self, run: str, **changes) -> None:
        current = self._progress().run
        if current is None or current.run != run:
            current = RunProgress(run, self.spec.base.epochs)
        self._update(run=dataclasses.replace(current, **changes))

    def on_step(self, run: str, epoch: int, step: int, steps: int, loss: float) -> None:
        self._update_run(run, epoch=epoch, step=step, steps_per_epoch=steps, loss=float(loss))

    def on_epoch_end(self, run: str, record: EpochRecord) -> None:
        if not isinstance(record, EpochRecord):
            record = EpochRecord.from_dict(record)
        current = self._progress().run
        records = (current.records if current is not None and current.run == run else ()) + (record,)
        self._update_run(run, epoch=record.epoch, step=0, records=records)

    def on_run_end(self, run: str, metrics: dict) -> None:
        self._update_run(run, finished=True)
