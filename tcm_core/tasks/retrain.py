"""A quick retrain with other margins in the background: ``training.retrain.retrain`` in a
``BackgroundTask``, so the margins page queues it like any other work. Its snapshot's
``progress`` is a ``RetrainProgress`` holding the ``RetrainResult`` once done."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tcm_core.tasks.base import BackgroundTask
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


class RetrainTask(BackgroundTask, ProgressCallback):
    """``retrain(config, margin_pos, margin_neg, out, ...)`` in a thread (same arguments). Its
    own callback: every hook is ``ProgressCallback``'s (the fraction and stage it reports are
    this task's), and ``should_stop`` is ``BackgroundTask``'s (first in the MRO)."""

    def __init__(self, config: TrainConfig, margin_pos: float, margin_neg: float, out, *,
                 lambda_pos: float | None = None, lambda_neg: float | None = None, baseline=None):
        quick_config(config, margin_pos, margin_neg)  # margins checked now, not in the thread
        self.config, self.out, self.baseline = config, Path(out), None if baseline is None else Path(baseline)
        self.margins, self.lambdas = (float(margin_pos), float(margin_neg)), (lambda_pos, lambda_neg)
        ProgressCallback.__init__(self, lambda fraction, text: self.report(fraction=fraction, stage=text))
        BackgroundTask.__init__(self, f"retrain {self.out.name}", progress=RetrainProgress(*self.margins))

    def run(self) -> None:
        result = retrain(self.config, *self.margins, self.out, lambda_pos=self.lambdas[0],
                         lambda_neg=self.lambdas[1], baseline=self.baseline, callback=self)
        self.report(progress=RetrainProgress(*self.margins, result))
