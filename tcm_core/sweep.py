"""A margin sweep: quick retrains over a grid of (m+, m-) in a background thread.

``MarginSweep`` trains the baseline once under the quick-retrain budget, then one +TCM run per
grid cell (``margins.retrain``), each saved as a run pair (``baseline/`` copied, ``tcm/``), and
collects OPIS and R@1 per cell. Like ``jobs.TrainingJob`` it is Streamlit-free: the page polls
``snapshot()`` and may ``stop()`` it; no exception leaves the thread. ``sweep.json`` in the sweep
folder lists the grid and the results. ``pareto_cells`` keeps the non-dominated cells.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.io import save_json
from tcm_core.margins import RetrainBudget, quick_config, retrain
from tcm_core.training.callbacks import Callback, TrainingStopped
from tcm_core.training.config import TrainConfig

DEFAULT_POS = (0.7, 0.8, 0.9)
DEFAULT_NEG = (0.3, 0.4, 0.5)


@dataclass(frozen=True)
class SweepCell:
    """One grid cell's quick retrain: OPIS / eps-OPIS / R@1 of its +TCM run (``run_dir`` is
    the cell's pair folder)."""

    margin_pos: float
    margin_neg: float
    opis: float
    recall_at_1: float
    eps_opis: float
    run_dir: str

    @property
    def label(self) -> str:
        return f"m+ {self.margin_pos:g}, m- {self.margin_neg:g}"


def cell_name(margin_pos: float, margin_neg: float) -> str:
    return f"mp{margin_pos:.2f}-mn{margin_neg:.2f}"


def pareto_cells(results) -> list[SweepCell]:
    """Cells no other cell dominates (lower OPIS and higher R@1 both; ties do not dominate)."""
    results = list(results)
    return [c for c in results
            if not any(o.opis < c.opis and o.recall_at_1 > c.recall_at_1 for o in results)]


def best_cell(results, r1_tolerance: float = 0.005) -> SweepCell | None:
    """Our choice of one cell to suggest: among the Pareto cells whose R@1 is within
    ``r1_tolerance`` of the best R@1, the lowest OPIS (consistency without costing accuracy)."""
    front = pareto_cells(results)
    if not front:
        return None
    top = max(c.recall_at_1 for c in front)
    return min((c for c in front if c.recall_at_1 >= top - r1_tolerance), key=lambda c: c.opis)


@dataclass(frozen=True)
class SweepSnapshot:
    status: str  # queued, running, finished, stopped, failed
    total: int
    results: tuple[SweepCell, ...] = ()
    current: str = ""
    step_fraction: float = 0.0
    baseline: dict | None = None  # OPIS / R@1 of the baseline under the sweep's budget
    error: str | None = None
    detail: str | None = None
    elapsed: float = 0.0

    @property
    def fraction(self) -> float:
        """Share of the grid done (the first cell also trains the baseline)."""
        return min(1.0, (len(self.results) + self.step_fraction) / self.total) if self.total else 1.0

    @property
    def done(self) -> bool:
        return self.status in ("finished", "stopped", "failed")


class MarginSweep(Callback):
    """The grid ``margins_pos x margins_neg`` of quick retrains of ``config`` into ``out``.

    ``cells_dir`` is where the cell pairs go (default ``out``; the app uses its runs folder so
    the run picker finds them), each named ``<out name>-mpX-mnY``. ``baseline``: the run
    folder of the original baseline, copied into each cell when the budget is not reduced.
    """

    def __init__(self, config: TrainConfig, out, margins_pos=DEFAULT_POS, margins_neg=DEFAULT_NEG,
                 *, cells_dir=None, baseline=None, budget: RetrainBudget = RetrainBudget(),
                 threads: int | None = 1):
        self.grid = [(float(p), float(n)) for p in margins_pos for n in margins_neg]
        if not self.grid:
            raise TCMError("the sweep grid is empty: choose at least one m+ and one m-")
        for p, n in self.grid:
            quick_config(config, p, n)  # margins checked now, not in the thread
        self.config, self.out, self.budget, self.threads = config, Path(out), budget, threads
        self.baseline = baseline
        self.cells_dir = Path(cells_dir) if cells_dir is not None else self.out
        self.margins_pos, self.margins_neg = tuple(map(float, margins_pos)), tuple(map(float, margins_neg))
        self._lock, self._stop, self._thread = threading.Lock(), threading.Event(), None
        self._started = None
        self._state = SweepSnapshot("queued", len(self.grid))

    def cell_dir(self, margin_pos: float, margin_neg: float) -> Path:
        return self.cells_dir / f"{self.out.name}-{cell_name(margin_pos, margin_neg)}"

    # ---- control
    def start(self) -> "MarginSweep":
        with self._lock:
            if self._thread is not None:
                raise TCMError("this sweep was already started")
            self._thread = threading.Thread(target=self._main, name=f"sweep-{self.out.name}", daemon=True)
            self._started = time.time()
            self._set(status="running", current="starting")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.snapshot().done

    def snapshot(self) -> SweepSnapshot:
        with self._lock:
            return dataclasses.replace(self._state, elapsed=time.time() - self._started if self._started else 0.0)

    # ---- the thread
    def _main(self) -> None:
        outcome = dict(status="failed", error="the sweep ended without a result")
        try:
            self._run()
            outcome = dict(status="finished", current="finished", error=None)
        except TrainingStopped:
            outcome = dict(status="stopped", current="stopped", error=None)
        except TCMError as exc:
            outcome = dict(status="failed", error=str(exc))
        except Exception as exc:  # a bug: one line for the page, the traceback for the logs
            first = (str(exc).splitlines() or [""])[0]
            outcome = dict(status="failed", error=f"unexpected error: {type(exc).__name__}: {first}",
                           detail=traceback.format_exc())
        finally:
            with self._lock:
                self._set(**outcome)
            self._save()

    def _run(self) -> None:
        # the first cell trains the pair (baseline under the budget + TCM, identical start);
        # later cells copy that baseline, or the given one when the budget is the original
        _, reduced = quick_config(self.config, *self.grid[0], budget=self.budget)
        base_dir = None if reduced or self.baseline is None else Path(self.baseline)
        for i, (p, n) in enumerate(self.grid):
            if self._stop.is_set():
                raise TrainingStopped("sweep stopped")
            self._set_locked(current=f"cell {i + 1}/{len(self.grid)}: m+ {p:g}, m- {n:g}", step_fraction=0.0)
            res = retrain(self.config, p, n, self.cell_dir(p, n), baseline=base_dir,
                          reuse_baseline=base_dir is not None, budget=self.budget, callback=self,
                          threads=self.threads)
            cell = SweepCell(p, n, res.opis, res.recall_at_1, res.eps_opis, str(res.out))
            with self._lock:
                base = dict(opis=res.baseline_opis, recall_at_1=res.baseline_recall_at_1)
                self._set(results=self._state.results + (cell,), step_fraction=0.0, baseline=base)
            base_dir = base_dir or res.out / "baseline"
            self._save()

    def _save(self) -> None:
        s = self.snapshot()
        self.out.mkdir(parents=True, exist_ok=True)
        save_json(self.out / "sweep.json", dict(
            status=s.status, margins_pos=list(self.margins_pos), margins_neg=list(self.margins_neg),
            config=self.config.to_dict(), budget=dataclasses.asdict(self.budget), baseline=s.baseline,
            results=[dataclasses.asdict(c) for c in s.results],
            pareto=[dataclasses.asdict(c) for c in pareto_cells(s.results)], error=s.error))

    def _set(self, **changes) -> None:  # callers hold the lock
        self._state = dataclasses.replace(self._state, **changes)

    def _set_locked(self, **changes) -> None:
        with self._lock:
            self._set(**changes)

    # ---- engine callbacks
    def on_step(self, run: str, epoch: int, step: int, steps: int, loss: float) -> None:
        epochs = max(1, self._epochs)
        self._set_locked(step_fraction=min(1.0, (epoch + step / max(1, steps)) / epochs))

    def on_run_start(self, run: str, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        self._epochs = epochs

    _epochs = 1

    def should_stop(self) -> bool:
        return self._stop.is_set()


def load_sweep(folder) -> dict:
    """The ``sweep.json`` of a sweep folder, with its results as ``SweepCell``s."""
    path = Path(folder) / "sweep.json"
    if not path.is_file():
        raise TCMError(f"{folder} is not a sweep folder: sweep.json is missing")
    d = json.loads(path.read_text())
    d["results"] = [SweepCell(**c) for c in d["results"]]
    d["pareto"] = [SweepCell(**c) for c in d["pareto"]]
    return d
