"""Benchmark: the threshold page's server-side work after one slider move, for 10,000 test
embeddings: both runs' utility curves from their distance histograms with OPIS and eps-OPIS
("numbers"), the changes' paired-bootstrap intervals, the side-by-side figure serialized as
``st.plotly_chart`` does it, and the per-class table. The one-off histogram pass per run (on
the first opening of a run) is reported separately.

Goals (issue 13): a move <= 30 ms, of which the numbers <= 10 ms; the histogram pass <= 1 s.

    .venv/bin/python bench/bench_threshold.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import plotly.io
import plotly.tools

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tcm_core.metrics import EvalSettings, pair_scores  # noqa: E402
from tcm_core.metrics import distance_histograms  # noqa: E402
from tcm_core.metrics.retrieval import class_hits  # noqa: E402
from tcm_core.metrics.scores import bootstrap_pair_changes  # noqa: E402
from tcm_core.viz import class_table, utility_pair_figure  # noqa: E402


def embeddings(n, classes, dim, seed):
    """A run's test embeddings: ``n`` samples of ``classes`` clusters with spreads of their own.
    The labels depend on ``n`` and ``classes`` only: both runs of a pair embed the same test split."""
    y = np.random.default_rng(classes).integers(0, classes, n)
    rng = np.random.default_rng(seed)
    spread = rng.uniform(0.3, 1.2, classes)
    return rng.normal(size=(classes, dim))[y] + spread[y, None] * rng.normal(size=(n, dim)), y


def streamlit_json(fig) -> str:
    """What ``st.plotly_chart(fig)`` does to a figure before sending it (streamlit 1.67)."""
    return plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True),
                             validate=False)


def slider_move(hb, ht, settings, hits=None) -> float:
    """One move's work; returns the seconds the numbers (curves, OPIS, eps-OPIS) took."""
    t = time.perf_counter()
    base, tcm = pair_scores(hb, ht, settings)
    numbers = time.perf_counter() - t
    if hits is not None:  # the changes' paired-bootstrap intervals, as the page shows them
        bootstrap_pair_changes(base, tcm, settings.eps, *hits)
    streamlit_json(utility_pair_figure(base.curves, tcm.curves, eps=settings.eps,  # scores as the page passes them
                                       scores=[(r.opis, r.eps_opis) for r in (base, tcm)]))
    class_table(base.curves, tcm.curves, hb, ht, (base.curves.t_min + base.curves.t_max) / 2)
    return numbers


MOVES = [EvalSettings(far_range=(a, b)) for a, b in [(1e-3, 0.1), (1e-2, 0.3), (1e-4, 0.05)]]
MOVES += [EvalSettings(beta=2.0), EvalSettings(eps=0.3), EvalSettings(num_thresholds=401),
          EvalSettings(distance_range=(0.8, 1.3))]


def main():
    print(f"n=10,000 test embeddings, d=128; per slider move, median (max) over 3 x the {len(MOVES)} moves "
          f"in the source; load average {os.getloadavg()[0]:.2f}")
    for classes in (100, 1000):
        (x, y), (x2, y2) = embeddings(10_000, classes, 128, 0), embeddings(10_000, classes, 128, 1)
        distance_histograms(x[:500], y[:500])  # warm-up: numba kernels load from their cache
        once = []
        for xs, ys in ((x, y), (x2, y2)):
            t = time.perf_counter()
            hist = distance_histograms(xs, ys)
            once.append((time.perf_counter() - t, hist))
        (t1, hb), (t2, ht) = once
        hits = (class_hits(x, y), class_hits(x2, y2))  # once per run, cached by the page
        for label, extra in (("without intervals", None), ("with intervals (the page)", hits)):
            slider_move(hb, ht, MOVES[0], extra)  # warm-up
            times, numbers = [], []
            for s in MOVES * 3:
                t = time.perf_counter()
                numbers.append(slider_move(hb, ht, s, extra))
                times.append(time.perf_counter() - t)
            goal = "   goal <= 30 ms" if extra is not None else ""
            print(f"  {classes:5d} classes, {label:26s}: move {1000 * np.median(times):6.1f} ms "
                  f"({1000 * max(times):6.1f}){goal}")
        print(f"  {classes:5d} classes, numbers (curves, OPIS, eps-OPIS): {1000 * np.median(numbers):6.1f} ms "
              f"({1000 * max(numbers):6.1f})   goal <= 10 ms")
        print(f"  {classes:5d} classes, histogram pass on first opening: {min(t1, t2):.2f} s per run "
              f"(max {max(t1, t2):.2f})   goal <= 1 s")


if __name__ == "__main__":
    main()
