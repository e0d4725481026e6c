"""Repeats: one baseline / +TCM pair per seed, and what they say together.

``train --compare --seeds 0 1 2 --out OUT`` trains ``OUT/seed-<n>/{baseline,tcm}``, each pair
exactly the pair ``--seed n`` trains alone, then writes ``OUT/summary.json``: every seed's
metrics and, for the change in OPIS (%), in eps-OPIS (%) and in R@1 (points), the mean over
seeds with a 95% interval (``metrics.uncertainty.summarize_changes``: Student t over the
per-seed changes, i.e. paired across seeds).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.io import save_json
from tcm_core.training import runs
from tcm_core.training.callbacks import Callback
from tcm_core.training.config import TrainConfig

SUMMARY = "summary.json"
SCORES = ("recall_at_1", "map_at_r", "opis", "eps_opis")
_SEED_DIR = re.compile(r"^seed-(\d+)$")


def seed_dir(out, seed: int) -> Path:
    return Path(out) / f"seed-{int(seed)}"


def parse_seeds(text: str) -> list[int]:
    """``"0 1 2"`` or ``"0, 1, 2"`` -> ``[0, 1, 2]`` (what the app's Seeds field takes)."""
    parts = str(text).replace(",", " ").split()
    if not all(p.lstrip("-").isdigit() for p in parts):
        raise TCMError(f"seeds must be whole numbers separated by spaces, e.g. '0 1 2'; got {text!r}")
    return check_seeds(parts)


def check_seeds(seeds) -> list[int]:
    seeds = [int(s) for s in seeds]
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise TCMError(f"seeds must be distinct non-negative integers; got {seeds}")
    return seeds


class SeedCallback(Callback):
    """Forwards the engine's hooks to ``inner`` with run names ``seed-<n>/<run>``."""

    def __init__(self, inner: Callback, seed: int):
        self.inner, self.prefix = inner, f"seed-{seed}/"

    def on_stage(self, text, done=0, total=0):
        self.inner.on_stage(f"{self.prefix}{text}", done, total)

    def on_run_start(self, run, epochs, steps_per_epoch, start_epoch):
        self.inner.on_run_start(self.prefix + run, epochs, steps_per_epoch, start_epoch)

    def on_step(self, run, epoch, step, steps, loss):
        self.inner.on_step(self.prefix + run, epoch, step, steps, loss)

    def on_epoch_end(self, run, record):
        self.inner.on_epoch_end(self.prefix + run, record)

    def on_run_end(self, run, metrics):
        self.inner.on_run_end(self.prefix + run, metrics)

    def should_stop(self):
        return self.inner.should_stop()


def train_repeats(config: TrainConfig, out, seeds, *, resume: bool = False,
                  callback: Callback | None = None) -> dict:
    """Train one pair per seed into ``out/seed-<n>`` and write ``out/summary.json``.

    With ``resume``, seeds whose pair already finished all epochs are kept as they are.
    """
    from tcm_core.training.engine import train

    callback = callback or Callback()
    for seed in check_seeds(seeds):
        where = seed_dir(out, seed)
        if resume and _finished(where, config.epochs):
            continue
        again = resume and (where / "baseline" / runs.CHECKPOINT).is_file()
        train(config.replace(seed=seed), where, compare=True, resume=again,
              callback=SeedCallback(callback, seed))
    return write_summary(out)


def _finished(where: Path, epochs: int) -> bool:
    try:
        return all(runs.load_metrics(where / side).get("epochs_done", 0) >= epochs for side in runs.PAIR)
    except TCMError:
        return False


def seed_pairs(out) -> dict[int, runs.RunPair]:
    """Seed -> its finished pair under ``out`` (folders ``seed-<n>`` with both runs' metrics)."""
    found = {}
    for child in Path(out).iterdir() if Path(out).is_dir() else ():
        match = _SEED_DIR.match(child.name)
        if match and all((child / side / runs.METRICS).is_file() for side in runs.PAIR):
            found[int(match.group(1))] = runs.RunPair(child)
    return dict(sorted(found.items()))


def find_repeats(root) -> list[Path]:
    """Repeats folders directly under ``root`` (at least one finished ``seed-<n>`` pair), newest first."""
    root = Path(root)
    found = [p for p in root.iterdir() if p.is_dir() and seed_pairs(p)] if root.is_dir() else []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def write_summary(out) -> dict:
    """Collect every finished seed's metrics under ``out`` and write ``summary.json``."""
    from tcm_core.metrics.uncertainty import summarize_changes

    per_seed = []
    for seed, pair in seed_pairs(out).items():
        row = {"seed": seed}
        for side, path in (("baseline", pair.baseline), ("tcm", pair.tcm)):
            m = runs.load_metrics(path)
            row[side] = {k: m[k] for k in SCORES}
            if m.get("validation"):
                row[side]["validation"] = {k: m["validation"][k] for k in SCORES if k in m["validation"]}
        per_seed.append(row)
    if not per_seed:
        raise TCMError(f"{out} holds no finished seed-<n>/ pair to summarize")
    summary = {"seeds": [r["seed"] for r in per_seed], "per_seed": per_seed,
               "changes": summarize_changes(per_seed),
               "interval": "95% Student t interval of the per-seed changes (paired across seeds)"}
    save_json(Path(out) / SUMMARY, summary)
    return summary


def summary_changes(summary: dict) -> dict:
    """``summary.json``'s changes as ``uncertainty.Interval``s (keys of ``summarize_changes``)."""
    from tcm_core.metrics.uncertainty import seed_change_intervals

    return seed_change_intervals(summary["per_seed"])


def load_summary(out) -> dict:
    path = Path(out) / SUMMARY
    if not path.is_file():
        raise TCMError(f"{out} is not a repeats folder: {SUMMARY} is missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TCMError(f"{path} is damaged ({exc}); delete it and run `train --resume` again") from None


CHANGE_NAMES = {"opis_change_pct": ("OPIS change", "%"), "eps_opis_change_pct": ("eps-OPIS change", "%"),
                "recall_at_1_change_pts": ("R@1 change", " pts")}


def format_change(change: dict, unit: str, *, long: bool = True) -> str:
    """One ``summary.json`` change (``mean``, ``ci_low``, ``ci_high``, ``n``) as terminal text."""
    text = "n/a" if change["mean"] is None else f"{change['mean']:+.2f}{unit}"
    if change["ci_low"] is None:
        return text
    if long:
        return text + f"  (95% CI {change['ci_low']:+.2f} .. {change['ci_high']:+.2f}{unit}, n={change['n']})"
    return text + f" [{change['ci_low']:+.2f}, {change['ci_high']:+.2f}]"


def format_summary(summary: dict) -> str:
    """The terminal's lines for a ``summary.json``: each change's mean and 95% interval."""
    lines = [f"{len(summary['seeds'])} seeds ({', '.join(map(str, summary['seeds']))}), +TCM vs baseline:"]
    for key, (name, unit) in CHANGE_NAMES.items():
        lines.append(f"  {name:16s} {format_change(summary['changes'][key], unit)}")
    return "\n".join(lines)
