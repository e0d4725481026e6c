"""Benchmark: ``utility_curves`` + ``opis`` against the bare lower bound measured in the same
run (one N x N similarity matmul plus one histogram of it, done in row blocks so it fits in
memory), for 100 classes. Each case runs in a fresh process so its peak memory is its own; the
bound and ours alternate, and each reports its fastest repeat.

Goal (issue 13): ours <= 1.5x the bound for N = 10k and 30k at d = 128 and 256; peak < 4 GB.

    .venv/bin/python bench/bench_opis.py            # N = 2k; 10k and 30k at d = 128 and 256
    .venv/bin/python bench/bench_opis.py --quick    # N = 2k only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASE = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import torch
from tcm_core.metrics import opis, utility_curves
n, d = {n}, {d}
g = torch.Generator().manual_seed(0)
labels = torch.randint(0, 100, (n,), generator=g)
x = torch.randn(100, d, generator=g)[labels] * 0.5 + torch.randn(n, d, generator=g)
x = torch.nn.functional.normalize(x, dim=1)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def bound():
    rows = max(1, (128 << 20) // (4 * n))
    for i in range(0, n, rows):
        torch.histc(x[i:i + rows] @ x.T, bins=1000, min=-1, max=1)

def ours():
    return opis(utility_curves(x, labels))

ours(); bound()  # warm up (numba kernels load from their cache, allocator settles)
tb, to = [], []
for _ in range({repeat}):
    t = time.perf_counter(); bound(); tb.append(time.perf_counter() - t)
    t = time.perf_counter(); ours(); to.append(time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(n=n, d=d, bound_s=min(tb), ours_s=min(to), ratio=min(to) / min(tb),
                      peak_rss_mb=peak / 1024, rss_before_mb=rss0 / 1024)))
"""


def run_case(n: int, d: int, repeat: int) -> dict:
    code = CASE.format(root=str(ROOT), n=n, d=d, repeat=repeat)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    cases = [(2000, 128, 5)]
    if not args.quick:
        cases += [(10000, 128, 3), (10000, 256, 3), (30000, 128, 2), (30000, 256, 2)]
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.2f}")
    print(f"{'N':>6} {'d':>4} {'bound s':>8} {'ours s':>8} {'ratio':>6} {'goal':>6} {'peak RSS MB':>12}")
    for n, d, repeat in cases:
        r = run_case(n, d, repeat)
        goal = "<= 1.5" if n >= 10000 else ""
        print(f"{r['n']:>6} {r['d']:>4} {r['bound_s']:>8.3f} {r['ours_s']:>8.3f} {r['ratio']:>6.2f} {goal:>6} "
              f"{r['peak_rss_mb']:>12.0f}")
    print("peak RSS goal: < 4096 MB")


if __name__ == "__main__":
    main()
