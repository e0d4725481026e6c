"""How long the margins page's quick retrain takes (tcm_core.training.retrain.retrain),
against the code before issue 13 (``--old-rev``) measured in the same run.

Two cases, each timed in fresh processes, new and old alternating (the load of a shared
machine drifts; the median of each is compared):

- ``mnist``: the MNIST ArcFace toy (``mnist-arcface-3d``, seed 0), reduced budget (3,000
  images, 1 epoch) with its baseline retrained under the same budget, both evaluated on the
  10,000 test and 2,000 validation digits with bootstrap intervals. Goal: <= 8 s.
- ``cub``: CUB100 with frozen MobileNetV2 features (``cub100-ms-128d``, seed 0): the head-only
  +TCM retrain (10 epochs at batch 32), the baseline copied. Features are extracted and cached
  before timing. Goal: <= 2 s.

The ratio printed is new / old: the same call (``retrain(config, m+, m-, out,
baseline=...)``, same data, same budget) through this tree's ``tcm_core`` and through the old
commit's (``git archive``).

    .venv/bin/python bench/bench_retrain.py [--repeats 3] [--cases mnist cub] [--old-rev 8dc31d0]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {"mnist": ("mnist-arcface-3d", 8.0), "cub": ("cub100-ms-128d", 2.0)}
OLD_REV = "8dc31d0"  # the branch point: the retrain before issue 13's goal 5

# one timed retrain in a fresh process, through the tcm_core first on sys.path
ONE = r"""
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import torch
from tcm_core.training import runs
from tcm_core.training.callbacks import Callback
from tcm_core.training.retrain import quick_config, resolve_paths, retrain
from tcm_core.training.setup import prepare
root, example, m_pos, m_neg = Path(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
folder = root / "assets" / "examples" / example
pair = runs.RunPair(folder / "seed-0" if (folder / "seed-0").is_dir() else folder)
config = resolve_paths(runs.load_config(pair.tcm), root).replace(device="cpu")
if config.freeze_backbone:  # the features are cached before timing (the page finds them cached)
    prepare(quick_config(config, m_pos, m_neg)[0], torch.device("cpu"), Callback())
import numpy as np
from tcm_core.metrics.evaluation import evaluate
evaluate(np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 3)  # numba kernels compiled / loaded
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    r = retrain(config, m_pos, m_neg, Path(tmp) / "retrain", baseline=pair.baseline)
    seconds = time.perf_counter() - t0
print("RESULT " + json.dumps(dict(seconds=seconds, opis=r.opis, baseline_opis=r.baseline_opis,
                                  recall_at_1=r.recall_at_1, baseline_recall_at_1=r.baseline_recall_at_1,
                                  reduced=r.reduced)))
"""


def old_tree(rev: str, into: Path) -> Path | None:
    """The old commit's ``tcm_core`` unpacked under ``into`` (None when git cannot give it)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "tcm_core"], capture_output=True)
    if archive.returncode != 0:
        print(f"old path unmeasured: git archive {rev} failed ({archive.stderr.decode().strip()})")
        return None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def time_once(tree: Path, example: str, margins) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-c", ONE, str(tree), str(ROOT), example, *map(str, margins)],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode != 0 or not line:
        raise SystemExit(f"the retrain through {tree} failed:\n{done.stderr[-2000:]}")
    return json.loads(line[-1][len("RESULT "):])


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["mnist", "cub"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--margins", type=float, nargs=2, default=(0.8, 0.4))
    p.add_argument("--old-rev", default=OLD_REV, help="the commit to compare against ('' to skip)")
    args = p.parse_args()
    print(f"2-core goals; load average (1/5/15 min) at start: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        old = old_tree(args.old_rev, Path(tmp)) if args.old_rev else None
        for case in args.cases:
            example, goal = CASES[case]
            times = {"new": [], "old": []}
            for i in range(args.repeats):
                for name, tree in (("new", ROOT), ("old", old)):
                    if tree is None:
                        continue
                    r = time_once(tree, example, args.margins)
                    times[name].append(r["seconds"])
                    print(f"  {case} {name} run {i + 1}: {r['seconds']:.2f} s  OPIS {r['opis']:.5f} "
                          f"(baseline {r['baseline_opis']:.5f})  R@1 {r['recall_at_1']:.4f} "
                          f"(baseline {r['baseline_recall_at_1']:.4f})  reduced budget: {r['reduced']}  load {load()}")
            new = statistics.median(times["new"])
            line = f"{case} retrain ({example}, m+ {args.margins[0]} m- {args.margins[1]}): median {new:.2f} s (goal <= {goal:g} s)"
            if times["old"]:
                old_s = statistics.median(times["old"])
                line += f"; old path ({args.old_rev}) {old_s:.2f} s; new/old {new / old_s:.2f} ({old_s / new:.1f}x faster)"
            print(line)
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
