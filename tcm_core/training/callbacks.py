"""How a UI watches training without the loop knowing it (minGPT-style callbacks).

The loop calls these hooks; the CLI draws progress bars from them, the app's background job
records them for the page to poll, and ``should_stop`` lets a Stop button end a run cleanly
(its last checkpoint stays, so it can be resumed). Every hook is a no-op here, so a subclass
overrides only what it draws. ``run`` is the run's name: ``"baseline"`` or ``"tcm"``.
"""

from __future__ import annotations

from tcm_core.training.records import EpochRecord


class Callback:
    """The hooks the training engine calls, in order: ``on_stage`` while preparing, then per
    run ``on_run_start``, ``on_step`` per step (``should_stop`` before each), ``on_epoch_end``
    per evaluated epoch and ``on_run_end``."""

    def on_stage(self, text: str, done: int = 0, total: int = 0) -> None:
        """Preparation progress (loading data, extracting features; ``done`` of ``total``, 0 = a note)."""

    def on_run_start(self, run: str, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        """A run begins: ``epochs`` in all, ``start_epoch`` of them already done (resumed)."""

    def on_step(self, run: str, epoch: int, step: int, steps: int, loss: float) -> None:
        """Step ``step`` (1-based) of ``steps`` in epoch ``epoch`` (0-based); ``loss``: the epoch's running mean."""

    def on_epoch_end(self, run: str, record: EpochRecord) -> None:
        """An epoch was evaluated and saved; ``record`` is what ``metrics.json``'s history gains."""

    def on_run_end(self, run: str, metrics: dict) -> None:
        """A run finished; ``metrics`` is its ``metrics.json`` (empty on DDP ranks other than 0)."""

    def should_stop(self) -> bool:
        """True to end the run before its next step (raises ``TrainingStopped``)."""
        return False


class TrainingStopped(Exception):
    """Raised inside the loop when ``Callback.should_stop`` says so; the run can be resumed."""
