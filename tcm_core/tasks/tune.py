"""The app's margin search and its re-check, in background threads (``experiments.tune``).

``TuneTask`` runs (or resumes) an Optuna margin search; its snapshot's ``progress`` is a
``TuneProgress``: the trials so far as frozen ``TuneTrial``s, how many finished trials end the
search and the trial in training. ``RecheckTask`` trains chosen margins as repeats on the run's
whole budget; its ``RecheckProgress`` carries the ``RecheckResult`` (the change on the test
classes with an interval across seeds) once done. Both stop at the next step when asked.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.experiments.tune import RecheckResult, TuneCallback, TuneSpec, TuneTrial, recheck, run_tune
from tcm_core.tasks.base import BackgroundTask
from tcm_core.training.callbacks import Callback
from tcm_core.training.config import TrainConfig
from tcm_core.training.repeats import check_seeds
from tcm_core.training.retrain import RetrainBudget, quick_config


class _RunShare(Callback):
    """The share of the run in training done, from the engine's hooks."""

    _epochs, _start, share = 1, 0, 0.0

    def on_run_start(self, run: str, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        self._epochs, self._start, self.share = max(1, epochs), start_epoch, 0.0

    def step_share(self, epoch: int, step: int, steps: int) -> float | None:
        """The share done after this step, or None between reports (every 5 steps)."""
        if step != steps and step % 5:
            return None
        self.share = min(1.0, (epoch - self._start + step / max(1, steps)) / max(1, self._epochs - self._start))
        return self.share


@dataclass(frozen=True)
class TuneProgress:
    """A search's state: ``total`` finished trials end it; ``trials`` (all states, by number);
    ``current`` names the trial in training (None between trials); ``out`` the search folder."""

    total: int
    out: str
    trials: tuple[TuneTrial, ...] = ()
    current: str | None = None

    @property
    def done(self) -> int:
        return sum(t.state == "COMPLETE" for t in self.trials)

    @property
    def finished(self) -> tuple[TuneTrial, ...]:
        return tuple(t for t in self.trials if t.state == "COMPLETE")


class TuneTask(BackgroundTask, TuneCallback, _RunShare):
    """``experiments.tune.run_tune`` of ``config``'s +TCM run in a thread (same arguments)."""

    def __init__(self, config: TrainConfig, baseline, out, spec: TuneSpec, *, storage: str | None = None,
                 trials_dir=None, budget: RetrainBudget = RetrainBudget()):
        if not isinstance(spec, TuneSpec):
            raise TCMError(f"spec must be a TuneSpec; got {type(spec).__name__}")
        quick_config(config, spec.margins_pos[0], spec.margins_neg[0], budget=budget)  # checked now
        self.config, self.baseline, self.out, self.spec = config, baseline, Path(out), spec
        self.storage, self.trials_dir, self.budget = storage, trials_dir, budget
        super().__init__(f"margin search {self.out.name}", progress=TuneProgress(spec.target, str(self.out)))

    def run(self) -> None:
        run_tune(self.config, self.baseline, self.out, self.spec, storage=self.storage, callback=self,
                 trials_dir=self.trials_dir, budget=self.budget)

    def _update(self, stage: str | None = None, **changes) -> None:
        progress = dataclasses.replace(self.snapshot().progress, **changes)  # this thread is its only writer
        fraction = min(1.0, (progress.done + (self.share if progress.current else 0.0)) / max(1, progress.total))
        self.report(progress=progress, fraction=fraction, **({} if stage is None else {"stage": stage}))

    # ---- search hooks
    def on_search(self, trials, total: int) -> None:
        self._update(trials=tuple(trials), total=total,
                     stage=f"{sum(t.state == 'COMPLETE' for t in trials)} of {total} trials finished")

    def on_trial_start(self, number: int, margin_pos: float, margin_neg: float) -> None:
        self.share = 0.0
        current = f"trial {number}: m+ {margin_pos:g}, m- {margin_neg:g}"
        self._update(current=current, stage=f"training {current}")

    def on_trial_end(self, trial: TuneTrial) -> None:
        trials = tuple(t for t in self.snapshot().progress.trials if t.number != trial.number) + (trial,)
        self._update(trials=tuple(sorted(trials, key=lambda t: t.number)), current=None,
                     stage=f"{trial.label}: {trial.state.lower()}")

    # ---- engine hooks
    def on_step(self, run: str, epoch: int, step: int, steps: int, loss: float) -> None:
        if self.step_share(epoch, step, steps) is not None:
            self._update()


@dataclass(frozen=True)
class RecheckProgress:
    """A re-check: the margins, the seeds, the repeats folder, and the result once done."""

    margin_pos: float
    margin_neg: float
    seeds: tuple[int, ...]
    out: str
    result: RecheckResult | None = None


class RecheckTask(BackgroundTask, _RunShare):
    """``experiments.tune.recheck`` in a thread (same arguments)."""

    def __init__(self, config: TrainConfig, margin_pos: float, margin_neg: float, out, seeds=(0, 1, 2), *,
                 lambda_pos: float | None = None, lambda_neg: float | None = None):
        quick_config(config, margin_pos, margin_neg)  # margins checked now, not in the thread
        self.config, self.out, self.seeds = config, Path(out), tuple(check_seeds(seeds))
        self.margins, self.lambdas = (float(margin_pos), float(margin_neg)), (lambda_pos, lambda_neg)
        self._runs = 0  # runs started (two per seed)
        super().__init__(f"re-check {self.out.name}",
                         progress=RecheckProgress(*self.margins, self.seeds, str(self.out)))

    def run(self) -> None:
        result = recheck(self.config, *self.margins, self.out, self.seeds, lambda_pos=self.lambdas[0],
                         lambda_neg=self.lambdas[1], callback=self)
        self.report(progress=dataclasses.replace(self.snapshot().progress, result=result))

    def on_run_start(self, run: str, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        super().on_run_start(run, epochs, steps_per_epoch, start_epoch)
        self._runs += 1
        self.report(stage=f"training {run}")

    def on_step(self, run: str, epoch: int, step: int, steps: int, loss: float) -> None:
        if (share := self.step_share(epoch, step, steps)) is not None:
            self.report(fraction=min(1.0, (self._runs - 1 + share) / (2 * len(self.seeds))))
