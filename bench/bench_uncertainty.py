"""Benchmark: ``bootstrap_scores`` (OPIS and eps-OPIS intervals, 1000 resamples over classes) and
the paired ``bootstrap_change`` on random utility curves with 201 thresholds, next to the goal
(fast enough to follow a slider: < 30 ms for 100 classes, < 300 ms for 1,000 on a 2-core CPU).

    .venv/bin/python bench/bench_uncertainty.py
    .venv/bin/python bench/bench_uncertainty.py --repeat 20

Each case runs twice: with numpy's BLAS at its default thread count, and limited to one BLAS
thread (threadpoolctl, installed with scikit-learn). On a busy 2-core machine the threaded
OpenBLAS can be the slower one (its threads wait on cores that other processes hold); the load
average is printed so figures can be read against it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tcm_core.metrics.uncertainty import bootstrap_change, bootstrap_scores
from tcm_core.metrics.utility import UtilityCurves

GOALS_MS = {100: 30.0, 1000: 300.0}
K = 201


def fake_curves(n_classes: int, seed: int = 0) -> UtilityCurves:
    """Sigmoid-shaped utility curves whose location and slope differ per class."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.6, 1.2, K)
    mid = rng.uniform(0.7, 1.1, n_classes)[:, None]
    slope = rng.uniform(5, 30, n_classes)[:, None]
    u = 1.0 / (1.0 + np.exp(-slope * (t - mid)))
    z = np.zeros_like(u)
    return UtilityCurves(thresholds=t, classes=np.arange(n_classes), class_sizes=np.full(n_classes, 10),
                         utility=u, tpr=u, tnr=u, far=np.linspace(1e-3, 1e-1, K), skipped_classes=z[:0, 0],
                         beta=1.0, far_range=(1e-3, 1e-1), distance_range=None)


def median_ms(fn, repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # no threadpoolctl: the default threads only
        threadpool_limits = None
    settings = [("default", contextlib.nullcontext)]
    if threadpool_limits is not None:
        settings.append(("1 thread", lambda: threadpool_limits(1, user_api="blas")))
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{args.resamples} resamples, {K} thresholds, median of {args.repeat}")
    print(f"{'classes':>8} {'BLAS':>9} {'scores ms':>10} {'change ms':>10} {'goal ms':>8}  ok")
    for n, goal in GOALS_MS.items():
        base, tcm = fake_curves(n, 0), fake_curves(n, 1)
        for name, limit in settings:
            with limit():
                s = median_ms(lambda b=base: bootstrap_scores(b, 0.1, resamples=args.resamples), args.repeat)
                c = median_ms(lambda b=base, t=tcm: bootstrap_change(b, t, 0.1, resamples=args.resamples),
                              args.repeat)
            print(f"{n:>8} {name:>9} {s:>10.1f} {c:>10.1f} {goal:>8.0f}  {'yes' if s < goal else 'NO'}")

if __name__ == "__main__":
    main()
