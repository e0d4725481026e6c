"""The per-epoch record: what the trainer measures after every epoch. It is the schema of
``metrics.json``'s ``history`` list, what callbacks receive in ``on_epoch_end`` and what the
app's charts draw."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tcm_core.errors import TCMError


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch of one run (all metrics on the test split, METHOD.md).

    epoch: 1-based number of the epoch just finished.
    loss, base_loss, tcm_loss: mean training losses over the epoch's steps (tcm_loss 0 without TCM).
    steps: optimizer steps in the epoch.
    recall_at_1, map_at_r: retrieval accuracy (shares in [0, 1]).
    opis, eps_opis: threshold inconsistency (lower is better).
    t_min, t_max: the calibration range (distances) that OPIS was measured over.
    seconds: wall time of the epoch, training and evaluation.
    val_*: the same metrics on the validation split (what margins are chosen on); None for
    data without one and for runs written before validation existed.
    """

    epoch: int
    loss: float
    base_loss: float
    tcm_loss: float
    steps: int
    recall_at_1: float
    map_at_r: float
    opis: float
    eps_opis: float
    t_min: float
    t_max: float
    seconds: float
    val_recall_at_1: float | None = None
    val_map_at_r: float | None = None
    val_opis: float | None = None
    val_eps_opis: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EpochRecord":
        fields = dataclasses.fields(cls)
        missing = [f.name for f in fields if f.name not in d and f.default is dataclasses.MISSING]
        if missing:
            raise TCMError(f"an epoch record lacks {missing}; was metrics.json written by another version?")
        return cls(**{f.name: d[f.name] for f in fields if f.name in d})


def load_history(metrics: dict) -> list[EpochRecord]:
    """The typed history of a run's ``metrics.json`` (empty when it has none)."""
    return [EpochRecord.from_dict(r) for r in metrics.get("history", ())]
