"""A quick retrain with other margins in the background: ``training.retrain.retrain`` in a
``BackgroundTask``, so the margins page queues it like any other work. Its snapshot's
``progress`` is a ``RetrainProgress`` holding the ``RetrainResult`` once done."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tcm_core.tasks.base import BackgroundTask
from tcm_core.training.callbacks import Callback
from tcm_core.training.config import TrainConfig
from tcm_core.training.retrain import (
    ProgressCallback,
    RetrainResult,
    quick_config,
    retrain,
)


@dataclass(frozen=True)
class RetrainProgress:
    """The margins retrained with, and the result once done."""

    margin_pos: float
    margin_neg: float
    result: RetrainResult | None = None


class RetrainTask(BackgroundTask, Callback):
    """``retrain(config, margin_pos, margin_neg, out, ...)`` in a thread (same arguments)."""

    def __init__(self, config: TrainConfig, margin_pos: float, margin_neg: float, out, *,
                 lambda_pos: float | None = None, lambda_neg: float | None = None, baseline=None):
        quick_config(config, margin_pos, margin_neg)  # margins checked now, not in the thread
        self.config, self.out, self.baseline = config, Path(out), None if baseline is None else Path(baseline)
        self.margins, self.lambdas = (float(margin_pos), float(margin_neg)), (lambda_pos, lambda_neg)
        self._bar = ProgressCallback(lambda fraction, text: self.report(fraction=fraction, stage=text))
        super().__init__(f"retrain {self.out.name}", progress=RetrainProgress(*self.margins))

    def run(self) -> None:
        result = retrain(self.config, *self.margins, self.out, lambda_pos=self.lambdas[0],
                         lambda_neg=self.lambdas[1], baseline=self.baseline, callback=self)
        self.report(progress=RetrainProgress(*self.margins, result))

    def on_stage(self, text: str, done: int = 0, total: int = 0) -> None:
        self._bar.on_stage(text, done, total)

    def on_run_start(self, run: str, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        self._bar.on_run_start(run, epochs, steps_per_epoch, start_epoch)

    def on_step(self, run: str, epoch: int, step: int, steps: int, loss: float) -> None:
        self._bar.on_step(run, epoch, step, steps, loss)
