"""Benchmark: the margins page's server-side work after one margin slider move, for 10,000
embeddings: ``penalized_shares``, ``tcm_terms`` and ``similarity_histogram_figure`` serialized
as ``st.plotly_chart`` does it (what ``pages/margins.py`` runs on a move). The one-off
``pair_similarities`` pass per run is reported separately.

Goal (issue 13): a move <= 30 ms.

    .venv/bin/python bench/bench_margins.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_threshold import embeddings, streamlit_json  # noqa: E402
from tcm_core.metrics.similarities import pair_similarities, penalized_shares, tcm_terms  # noqa: E402
from tcm_core.viz.margins import similarity_histogram_figure  # noqa: E402

MOVES = [(0.9, 0.5), (0.8, 0.5), (0.8, 0.3), (0.6, 0.2), (0.95, 0.7), (0.5, 0.0), (0.2, -0.3)]  # (m+, m-)


def slider_move(h, m_pos, m_neg, l_pos=1.0, l_neg=1.0) -> None:
    penalized_shares(h, m_pos, m_neg)
    tcm_terms(h, m_pos, m_neg, l_pos, l_neg)
    streamlit_json(similarity_histogram_figure(h, m_pos, m_neg, split="validation"))


def main():
    print(f"n=10,000 embeddings, d=128; per margin slider move, median (max) over 3 x the {len(MOVES)} moves "
          f"in the source; load average {os.getloadavg()[0]:.2f}")
    for classes in (100, 1000):
        x, y = embeddings(10_000, classes, 128, 0)
        t = time.perf_counter()
        h = pair_similarities(x, y)
        once = time.perf_counter() - t
        slider_move(h, *MOVES[0])  # warm-up
        times = []
        for m_pos, m_neg in MOVES * 3:
            t = time.perf_counter()
            slider_move(h, m_pos, m_neg)
            times.append(time.perf_counter() - t)
        print(f"  {classes:5d} classes: move {1000 * np.median(times):6.1f} ms ({1000 * max(times):6.1f})   "
              f"goal <= 30 ms; pair_similarities on first opening {once:.2f} s")


if __name__ == "__main__":
    main()
