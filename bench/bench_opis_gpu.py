"""Benchmark: OPIS of a million embeddings on one GPU (issue 13, goal 2: N = 1,000,000, d = 128,
1,000 classes in under 60 s on an H100-class GPU, device memory bounded by a budget).

Prints N, d, seconds, peak device memory and the ratio to a bare float32 matmul over the same
pairs (the upper triangle's blocks, once), measured in the same run. OPIS streams the pairs
three times (locating histogram, quantile windows, counts), so the ratio cannot go below ~3.
Without CUDA the GPU case is unmeasured: a small smoke run of the same device path on the CPU
checks it against the numba kernels, bit for bit, and prints its timings instead.

    .venv/bin/python bench/bench_opis_gpu.py                      # 1M x 128 on CUDA
    .venv/bin/python bench/bench_opis_gpu.py --n 200000 --budget-gb 4
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tcm_core.metrics import (
    device_pairs,
    embedding_set,
    opis,
    pairs,
)
from tcm_core.metrics.utility import utility_curves_from_set


def make_data(n: int, d: int, classes: int, device: torch.device, seed: int = 0):
    """Clustered unit vectors whose per-class spread differs (so OPIS is not ~0)."""
    g = torch.Generator(device=device).manual_seed(seed)
    labels = torch.arange(n, device=device) % classes
    centers = torch.randn(classes, d, generator=g, device=device)
    spread = 0.8 + 1.2 * torch.rand(classes, generator=g, device=device)
    x = centers[labels] + spread[labels, None] * torch.randn(n, d, generator=g, device=device)
    return torch.nn.functional.normalize(x, dim=1), labels.cpu().numpy()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_matmul(es, budget: int) -> float:
    """Seconds for the upper triangle's block matmuls alone, with the scan passes' blocks."""
    rows = device_pairs.block_rows(es.n, device_pairs.SCAN_BYTES_PER_PAIR, budget)
    sync(es.embeddings.device)
    t = time.perf_counter()
    for i0 in range(0, es.n, rows):
        es.embeddings[i0 : i0 + rows] @ es.embeddings[i0:].T
    sync(es.embeddings.device)
    return time.perf_counter() - t


def timed_opis(es) -> tuple[float, float, np.ndarray]:
    t = time.perf_counter()
    curves = utility_curves_from_set(es)
    sync(es.embeddings.device)
    return time.perf_counter() - t, opis(curves), curves.utility


def run_gpu(n: int, d: int, classes: int, budget: int) -> None:
    device = torch.device("cuda")
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, budget {budget / 2**30:.1f} GiB; "
          f"goal: N=1,000,000 d=128 in < 60 s")
    check_against_kernels(20_000, d, classes, device)  # also warms up CUDA and the cut points
    x, labels = make_data(n, d, classes, device)
    t = time.perf_counter()
    es = embedding_set(x, labels, device=device)  # checks, float64 copy on the host
    prep = time.perf_counter() - t
    del x
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    seconds, value, _ = timed_opis(es)
    peak = torch.cuda.max_memory_allocated(device)
    bound = bare_matmul(es, budget)
    t = time.perf_counter()
    lo, hi = pairs.negative_distance_quantiles(es, [1e-3, 1e-1])
    sync(device)
    t_quantiles = time.perf_counter() - t
    print(f"calibration passes (histogram + windows) {t_quantiles:.2f} s, FAR band d in [{lo:.4f}, {hi:.4f}]; "
          f"counting pass ~{seconds - t_quantiles:.2f} s")
    print(f"{'N':>9} {'d':>4} {'OPIS s':>8} {'matmul s':>9} {'ratio':>6} {'peak GiB':>9} {'resident GiB':>13} {'prep s':>7}  OPIS")
    print(f"{n:>9} {d:>4} {seconds:>8.2f} {bound:>9.2f} {seconds / bound:>6.2f} {peak / 2**30:>9.2f} "
          f"{base / 2**30:>13.2f} {prep:>7.1f}  {value:.6f}")


def check_against_kernels(n: int, d: int, classes: int, device: torch.device) -> None:
    """The same embeddings on the device and through the CPU kernels: identical curves."""
    x, labels = make_data(n, d, classes, device, seed=1)
    _, value, u = timed_opis(embedding_set(x, labels, device=device))
    _, want, u_cpu = timed_opis(embedding_set(x.cpu(), labels, device="cpu"))
    print(f"check N={n}: {device.type} OPIS {value:.9f}, CPU kernels {want:.9f}, "
          f"identical utility: {np.array_equal(u, u_cpu)}")


def run_cpu_smoke(n: int, d: int, classes: int, budget: int) -> None:
    print("GPU case unmeasured: no CUDA device here. CPU smoke run of the device path instead.")
    device = torch.device("cpu")
    es = embedding_set(*make_data(n, d, classes, device), device=device)
    pairs.USE_KERNELS = True
    kernel_s, kernel_opis, kernel_u = timed_opis(es)
    pairs.USE_KERNELS = False
    device_s, device_opis, device_u = timed_opis(es)
    pairs.USE_KERNELS = True
    same = np.array_equal(device_u, kernel_u)
    bound = bare_matmul(es, budget)
    print(f"{'N':>7} {'d':>4} {'kernels s':>10} {'device path s':>14} {'matmul s':>9} {'ratio':>6}  identical")
    print(f"{n:>7} {d:>4} {kernel_s:>10.2f} {device_s:>14.2f} {bound:>9.3f} {device_s / bound:>6.1f}  "
          f"{same} (OPIS {device_opis:.6f} vs {kernel_opis:.6f})")
    if not same:
        raise SystemExit("the device path disagrees with the kernels")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=None, help="embeddings (default 1,000,000 on CUDA, 4,000 on the CPU)")
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--budget-gb", type=float, default=None,
                    help="per-block temporaries, GiB (default: the library's, a quarter of the GPU's memory)")
    ap.add_argument("--cpu", action="store_true", help="the CPU smoke run even when CUDA is present")
    args = ap.parse_args()
    gpu = torch.cuda.is_available() and not args.cpu
    if args.budget_gb is not None:
        budget = int(args.budget_gb * 2**30)
    else:
        budget = device_pairs.memory_budget(device=torch.device("cuda" if gpu else "cpu"))
        budget = budget if gpu else min(budget, 256 << 20)
    os.environ[device_pairs.BUDGET_ENV] = str(budget)
    if gpu:
        run_gpu(args.n or 1_000_000, args.d, args.classes, budget)
    else:
        run_cpu_smoke(args.n or 4000, min(args.d, 64), min(args.classes, 40), budget)


if __name__ == "__main__":
    main()
