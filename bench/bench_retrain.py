"""How long a quick margin retrain takes (tcm_core.training.retrain.retrain).

CUB100 with frozen MobileNetV2 features (the ready example's config): the backbone features
are extracted and cached first (not timed), then the head-only +TCM retrain is timed; the
baseline is copied from the example. Goal: under 5 s on 2 CPU cores.

    .venv/bin/python bench/bench_retrain.py [--repeats 3] [--example cub100-ms-128d]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tcm_core.training.retrain import quick_config, resolve_paths, retrain  # noqa: E402
from tcm_core.training import runs  # noqa: E402
from tcm_core.training.callbacks import Callback  # noqa: E402
from tcm_core.training.setup import prepare  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--example", default="cub100-ms-128d")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--margins", type=float, nargs=2, default=(0.8, 0.4))
    args = p.parse_args()
    folder = ROOT / "assets" / "examples" / args.example
    pair = runs.RunPair(folder / "seed-0" if (folder / "seed-0").is_dir() else folder)  # repeats: seed 0
    config = resolve_paths(runs.load_config(pair.tcm), ROOT).replace(device="cpu")
    t0 = time.perf_counter()
    prepare(quick_config(config, *args.margins)[0], torch.device("cpu"), Callback())  # caches the features
    print(f"features ready (cached or extracted) in {time.perf_counter() - t0:.1f} s; "
          f"{torch.get_num_threads()} torch threads")
    times = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            r = retrain(config, *args.margins, Path(tmp) / "retrain", baseline=pair.baseline)
            times.append(time.perf_counter() - t0)
        print(f"  run {i + 1}: {times[-1]:.2f} s  OPIS {r.opis:.5f} (baseline {r.baseline_opis:.5f})  "
              f"R@1 {r.recall_at_1:.3f} (baseline {r.baseline_recall_at_1:.3f})  reduced budget: {r.reduced}")
    print(f"quick retrain {args.example} m+={args.margins[0]} m-={args.margins[1]}: "
          f"median {sorted(times)[len(times) // 2]:.2f} s over {len(times)} runs (goal < 5 s)")


if __name__ == "__main__":
    main()
