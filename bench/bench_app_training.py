"""Benchmark: training from the app against the CLI, and the app's responsiveness while it trains.

1. The same pair (default: the MNIST toy, 20,000 training images, 1 epoch, 3-D) trained by
   ``python -m tcm_core train --compare`` and by the app's queue (``tcm_core.tasks.queue``: one
   worker process) while 10 simulated sessions watch it as the Train page does: each polls the
   job's snapshot at the page's interval (``JobQueue.watch``; ``--poll S`` for a fixed one) and
   rebuilds and serializes the history figure when an epoch arrives. Speed = CLI seconds / app
   seconds, both wall clock from the request to the finished pair. Goal: >= 0.8. Also printed:
   the CPU seconds of the training process (the CLI, the worker) and of the watchers' polling
   (this process), which a shared machine's load does not distort as it does wall clock.
2. A threshold-slider move (``bench_threshold.slider_move``: 10,000 test embeddings, 100 classes,
   with bootstrap intervals) with nothing running, then while two trainings run in the queue
   (2 workers). Goal: the move answers within 1 s.

    TCM_DATA_DIR=../shared/data .venv/bin/python bench/bench_app_training.py [--max-train 20000]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_threshold import embeddings, slider_move  # noqa: E402

from tcm_core.metrics import EvalSettings, distance_histograms  # noqa: E402
from tcm_core.metrics.retrieval import class_hits  # noqa: E402
from tcm_core.tasks.base import TaskStatus  # noqa: E402
from tcm_core.tasks.queue import JobQueue  # noqa: E402
from tcm_core.tasks.requests import train_request  # noqa: E402
from tcm_core.training import TrainConfig  # noqa: E402
from tcm_core.viz import history_figure  # noqa: E402


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cli_seconds(config: TrainConfig, out: Path) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "tcm_core", "train", "--compare", "--out", str(out), "--dataset", config.dataset,
           "--max-train-samples", str(config.max_train_samples), "--embedding-dim", str(config.embedding_dim),
           "--epochs", str(config.epochs), "--device", config.device]
    t, cpu = time.perf_counter(), child_cpu()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - t, child_cpu() - cpu


def watch(queue: JobQueue, job, owner: str, poll: float | None, counts: list) -> None:
    """One session's Train page: poll, and rebuild the figure only when an epoch arrives."""
    seen = None
    while True:
        interval = queue.watch(owner)
        snap = job.snapshot()
        histories = {r.run: r.records for r in snap.progress.runs}
        epochs = tuple(len(h) for h in histories.values())
        if epochs != seen and any(epochs):
            history_figure(histories).to_json()
            seen = epochs
        counts.append(1)
        if snap.done:
            return
        time.sleep(interval if poll is None else poll)


def app_seconds(config: TrainConfig, root: Path, watchers: int, poll: float | None):
    """(wall seconds, the worker's CPU seconds, the watchers' CPU seconds, polls)."""
    queue = JobQueue(root, workers=1)
    t, cpu, mine = time.perf_counter(), child_cpu(), own_cpu()
    job = queue.submit(train_request(config, root / "pair"), "session-0")
    counts: list = []
    threads = [threading.Thread(target=watch, args=(queue, job, f"session-{i}", poll, counts)) for i in range(watchers)]
    for th in threads:
        th.start()
    job.wait()
    seconds = time.perf_counter() - t
    for th in threads:
        th.join()
    if job.snapshot().status != TaskStatus.FINISHED:
        raise SystemExit(f"the queued training ended {job.snapshot().status}: {job.snapshot().error}")
    return seconds, child_cpu() - cpu, own_cpu() - mine, len(counts)


def slider_moves(n: int = 8) -> list[float]:
    (x, y), (x2, y2) = embeddings(10_000, 100, 128, 0), embeddings(10_000, 100, 128, 1)
    hb, ht, hits = distance_histograms(x, y), distance_histograms(x2, y2), (class_hits(x, y), class_hits(x2, y2))
    times = []
    for i in range(n):
        t = time.perf_counter()
        slider_move(hb, ht, EvalSettings(far_range=(1e-3, 0.1 + 0.02 * i)), hits)
        times.append(time.perf_counter() - t)
    return times


def responsiveness(config: TrainConfig, root: Path) -> None:
    idle = slider_moves()
    queue = JobQueue(root, workers=2)
    jobs = [queue.submit(train_request(config.replace(seed=s), root / f"busy-{s}"), "bench") for s in (1, 2)]
    deadline = time.monotonic() + 300
    while not all(j.snapshot().stage.startswith("training") for j in jobs) and time.monotonic() < deadline:
        time.sleep(0.2)
    busy = slider_moves()
    states = [j.snapshot().stage for j in jobs]
    queue.shutdown()
    print(f"slider move, idle:                  median {1000 * statistics.median(idle):6.0f} ms, max {1000 * max(idle):6.0f} ms")
    print(f"slider move, two trainings running: median {1000 * statistics.median(busy):6.0f} ms, "
          f"max {1000 * max(busy):6.0f} ms (goal: under 1000 ms; trainings were at: {'; '.join(states)})")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-train", type=int, default=20_000)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--device", default="auto")
    p.add_argument("--watchers", type=int, default=10)
    p.add_argument("--poll", type=float, help="seconds between a watcher's polls (default: the page's interval)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--skip-slider", action="store_true")
    args = p.parse_args()
    config = TrainConfig(dataset=args.dataset, max_train_samples=args.max_train, embedding_dim=3, device=args.device)
    print(f"{config.dataset}, {args.max_train} training images, {config.epochs} epoch, pair; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            cli, cli_cpu = cli_seconds(config, Path(tmp) / f"cli-{r}")
            app, app_cpu, watch_cpu, polls = app_seconds(config, Path(tmp) / f"app-{r}", args.watchers, args.poll)
            print(f"CLI {cli:6.1f} s ({cli_cpu:.1f} CPU s) | app: queue worker {app:6.1f} s ({app_cpu:.1f} CPU s), "
                  f"{args.watchers} watchers {polls} polls ({watch_cpu:.1f} CPU s) | speed app/CLI {cli / app:.2f} "
                  f"(goal >= 0.8), CPU CLI/app {cli_cpu / (app_cpu + watch_cpu):.2f}; load average now {os.getloadavg()[0]:.1f}")
        if not args.skip_slider:
            responsiveness(config, Path(tmp) / "busy")


if __name__ == "__main__":
    main()
