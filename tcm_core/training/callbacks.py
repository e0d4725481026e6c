"""How a UI watches training without the loop knowing it (minGPT-style callbacks).

The loop calls these hooks; the CLI draws progress bars from them, the app's background job
records them for the page to poll, and ``should_stop`` lets a Stop button end a run cleanly
(its last checkpoint stays, so it can be resumed).
"""

from __future__ import annotations


class Callback:
    def on_stage(self, text: str, done: int = 0, total: int = 0) -> None:
        """Preparation progress (loading data, extracting backbone features) and notes."""

    def on_run_start(self, run: str, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        pass

    def on_step(self, run: str, epoch: int, step: int, steps: int, loss: float) -> None:
        pass

    def on_epoch_end(self, run: str, record: dict) -> None:
        pass

    def on_run_end(self, run: str, metrics: dict) -> None:
        pass

    def should_stop(self) -> bool:
        return False


class TrainingStopped(Exception):
    """Raised inside the loop when ``Callback.should_stop`` says so; the run can be resumed."""
