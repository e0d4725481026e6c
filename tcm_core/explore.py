"""What the threshold-consistency view computes after every slider move, Streamlit-free:
both runs' utility curves from their fine distance histograms, OPIS and eps-OPIS, and the
change from baseline to +TCM. Timed in ``bench/bench_threshold.py``."""

from __future__ import annotations

from dataclasses import dataclass

from tcm_core.metrics import DistanceHistograms, UtilityCurves, eps_opis, opis


@dataclass(frozen=True)
class ViewSettings:
    """``distance_range`` (when given) overrides ``far_range``, as everywhere (METHOD.md)."""

    far_range: tuple[float, float] = (1e-3, 1e-1)
    distance_range: tuple[float, float] | None = None
    num_thresholds: int = 201
    beta: float = 1.0
    eps: float = 0.1


@dataclass(frozen=True)
class RunView:
    curves: UtilityCurves
    opis: float
    eps_opis: float


def run_view(hist: DistanceHistograms, s: ViewSettings) -> RunView:
    curves = hist.curves(far_range=s.far_range, distance_range=s.distance_range,
                         num_thresholds=s.num_thresholds, beta=s.beta)
    return RunView(curves, opis(curves), eps_opis(curves, s.eps))


def pair_view(base: DistanceHistograms, tcm: DistanceHistograms, s: ViewSettings) -> tuple[RunView, RunView]:
    return run_view(base, s), run_view(tcm, s)
