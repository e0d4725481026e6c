"""Background training jobs: what the app's Train page starts, polls, stops and resumes.

A ``TrainingJob`` is a ``BackgroundTask`` that runs ``training.train`` and is its own (recording)
engine callback: its snapshot's ``progress`` is a ``TrainingProgress`` (each run's epochs, steps
and ``EpochRecord``s). The app runs it through the one queue of background work
(``tasks.queue``), in a worker process.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.tasks.base import BackgroundTask, TaskStatus
from tcm_core.training import runs
from tcm_core.training.callbacks import Callback
from tcm_core.training.config import TrainConfig
from tcm_core.training.engine import train
from tcm_core.training.records import EpochRecord, load_history
from tcm_core.training.repeats import check_seeds, train_repeats


@dataclass(frozen=True)
class RunProgress:
    """One run of a job: ``epoch`` is the 0-based epoch in progress, ``step`` its last step;
    ``records`` holds every finished epoch (earlier ones too, when resumed)."""

    run: str
    epochs: int
    steps_per_epoch: int = 0
    epoch: int = 0
    step: int = 0
    loss: float | None = None
    records: tuple[EpochRecord, ...] = ()
    finished: bool = False

    @property
    def fraction(self) -> float:
        """Share of the whole run done, 0..1 (steps of all epochs)."""
        if self.finished:
            return 1.0
        total = self.epochs * self.steps_per_epoch
        return min(1.0, (self.epoch * self.steps_per_epoch + self.step) / total) if total else 0.0


@dataclass(frozen=True)
class TrainingProgress:
    """A job's runs in plan order, and the done share of the current preparation stage
    (loading data, backbone features; None when the stage has no count)."""

    runs: tuple[RunProgress, ...]
    stage_fraction: float | None = None

    def run(self, name: str) -> RunProgress | None:
        return next((r for r in self.runs if r.run == name), None)

    def with_run(self, new: RunProgress) -> TrainingProgress:
        """This progress with ``new`` in place of its run of the same name (or appended)."""
        known = self.run(new.run) is not None
        runs_ = tuple(new if r.run == new.run else r for r in self.runs) + (() if known else (new,))
        return dataclasses.replace(self, runs=runs_)

    @property
    def fraction(self) -> float:
        """Share of all runs done, 0..1."""
        return sum(r.fraction for r in self.runs) / len(self.runs) if self.runs else 0.0


def run_names(config: TrainConfig, compare: bool, seeds: tuple[int, ...] = ()) -> list[str]:
    """The engine's plan: baseline then tcm with ``compare``, else the one run; with ``seeds``
    (repeats), ``seed-<n>/baseline`` and ``seed-<n>/tcm`` for each seed."""
    if seeds:
        return [f"seed-{s}/{side}" for s in seeds for side in runs.PAIR]
    return list(runs.PAIR) if compare else ["tcm" if config.tcm else "baseline"]


class TrainingJob(BackgroundTask, Callback):
    """One call of ``train`` in the background (``out`` exactly; a pair with ``compare``), or
    with ``seeds`` one pair per seed (``training.repeats``: ``out/seed-<n>`` and ``summary.json``)."""

    def __init__(self, config: TrainConfig, out, compare: bool = True, resume: bool = False,
                 seeds=()):
        self.job_id, self.config, self.out = uuid.uuid4().hex[:8], config, Path(out)
        self.compare, self.resumed = compare or bool(seeds), resume
        self.seeds = tuple(check_seeds(seeds)) if seeds else ()
        plan = tuple(RunProgress(n, config.epochs) for n in run_names(config, self.compare, self.seeds))
        super().__init__(f"training job {self.job_id}", progress=TrainingProgress(plan))

    def run_dir(self, name: str) -> Path:
        return self.out / name if self.compare else self.out

    def run(self) -> None:
        if self.seeds:
            train_repeats(self.config, self.out, self.seeds, resume=self.resumed, callback=self)
        else:
            train(self.config, self.out, compare=self.compare, resume=self.resumed, callback=self)

    def has_checkpoint(self) -> bool:
        """Whether the first run of the plan saved a checkpoint in the folder (what resuming
        continues from; a later run without one starts fresh)."""
        plan = self.snapshot().progress.runs
        return bool(plan) and (self.run_dir(plan[0].run) / runs.CHECKPOINT).is_file()

    @property
    def resumable(self) -> bool:
        """Stopped or failed after the first run of the plan saved a checkpoint."""
        return self.snapshot().status in (TaskStatus.STOPPED, TaskStatus.FAILED) and self.has_checkpoint()

    def resume(self) -> TrainingJob:
        """A new job, started, that continues this one's folder from its checkpoints."""
        if not self.resumable:
            raise TCMError(f"job {self.job_id} cannot be resumed: it must be stopped or failed after "
                           f"its first run finished at least one epoch")
        return TrainingJob(self.config, self.out, self.compare, resume=True, seeds=self.seeds).start()

    # ---- engine callbacks (in the job's thread, the only writer of its progress)
    def _progress(self) -> TrainingProgress:
        return self.snapshot().progress

    def _update_run(self, name: str, **changes) -> None:
        current = self._progress()
        old = current.run(name) or RunProgress(name, self.config.epochs)
        progress = current.with_run(dataclasses.replace(old, **changes))
        self.report(progress=progress, fraction=progress.fraction)

    def on_stage(self, text: str, done: int = 0, total: int = 0) -> None:
        progress = dataclasses.replace(self._progress(), stage_fraction=done / total if total else None)
        self.report(stage=text, progress=progress)

    def on_run_start(self, run: str, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        self.on_stage(f"training {run}")
        self._update_run(run, epochs=epochs, steps_per_epoch=steps_per_epoch, epoch=start_epoch,
                         step=0, records=self._earlier(run, start_epoch), finished=start_epoch >= epochs)

    def _earlier(self, run: str, start_epoch: int) -> tuple[EpochRecord, ...]:
        """When resumed, the epochs trained before, from the run's metrics.json."""
        if not start_epoch:
            return ()
        try:
            return tuple(load_history(runs.load_metrics(self.run_dir(run)))[:start_epoch])
        except TCMError:  # checkpoint written but not metrics: the history just starts later
            return ()

    def on_step(self, run: str, epoch: int, step: int, steps: int, loss: float) -> None:
        self._update_run(run, epoch=epoch, step=step, steps_per_epoch=steps, loss=float(loss))

    def on_epoch_end(self, run: str, record: EpochRecord | dict) -> None:
        if not isinstance(record, EpochRecord):  # the engine's dict, before it sends records
            record = EpochRecord.from_dict(record)
        records = self._progress().run(run).records + (record,)
        self._update_run(run, epoch=record.epoch, step=0, records=records)

    def on_run_end(self, run: str, metrics: dict) -> None:
        self._update_run(run, finished=True)
