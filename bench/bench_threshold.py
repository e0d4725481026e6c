"""Benchmark: the threshold page's server-side work after one slider move, for 10,000 test
embeddings (goal: under 100 ms). Both runs' utility curves from their distance histograms,
OPIS and eps-OPIS, the side-by-side figure serialized as Streamlit sends it, and the per-class
table. The one-off histogram pass per run (on page load) is reported separately.

    .venv/bin/python bench/bench_threshold.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tcm_core.metrics import EvalSettings, pair_scores  # noqa: E402
from tcm_core.metrics import distance_histograms  # noqa: E402
from tcm_core.metrics.retrieval import class_hits  # noqa: E402
from tcm_core.metrics.scores import bootstrap_pair_changes  # noqa: E402
from tcm_core.viz import class_table, utility_pair_figure  # noqa: E402


def embeddings(n, classes, dim, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    spread = rng.uniform(0.3, 1.2, classes)
    return rng.normal(size=(classes, dim))[y] + spread[y, None] * rng.normal(size=(n, dim)), y


def slider_move(hb, ht, settings, hits=None):
    base, tcm = pair_scores(hb, ht, settings)
    if hits is not None:  # the changes' paired-bootstrap intervals, as the page shows them
        bootstrap_pair_changes(base, tcm, settings.eps, *hits)
    fig = utility_pair_figure(base.curves, tcm.curves, eps=settings.eps)
    fig.to_json()  # what st.plotly_chart sends
    class_table(base.curves, tcm.curves, hb, ht, (base.curves.t_min + base.curves.t_max) / 2)


def main():
    moves = [EvalSettings(far_range=(a, b)) for a, b in [(1e-3, 0.1), (1e-2, 0.3), (1e-4, 0.05)]]
    moves += [EvalSettings(beta=2.0), EvalSettings(eps=0.3), EvalSettings(num_thresholds=401),
              EvalSettings(distance_range=(0.8, 1.3))]
    print("n=10,000 test embeddings, d=128; per slider move (median of the moves listed in the source)")
    for classes in (100, 1000):
        (x, y), (x2, y2) = embeddings(10_000, classes, 128, 0), embeddings(10_000, classes, 128, 1)
        t = time.perf_counter()
        hb, ht = distance_histograms(x, y), distance_histograms(x2, y2)
        once = (time.perf_counter() - t) / 2
        hits = (class_hits(x, y), class_hits(x2, y2))  # once per run, cached by the page
        for label, extra in (("without intervals", None), ("with bootstrap intervals", hits)):
            slider_move(hb, ht, moves[0], extra)  # warm-up
            times = []
            for s in moves * 3:
                t = time.perf_counter()
                slider_move(hb, ht, s, extra)
                times.append(time.perf_counter() - t)
            print(f"  {classes:5d} classes, {label}: slider move {1000 * np.median(times):6.1f} ms median, "
                  f"{1000 * max(times):6.1f} ms max")
        print(f"  {classes:5d} classes: histogram pass on page load {once:.2f} s per run")


if __name__ == "__main__":
    main()
