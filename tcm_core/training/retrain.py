"""A quick retrain: the +TCM run of a run's config trained again with other margins, reusing
the training engine (METHOD.md, "TCM"; the app's margins page and margin searches call it).

Frozen-backbone runs train only their head on the cached backbone features (same budget as the
original run, so the original baseline is the fair comparison); other runs get a reduced budget
(``RetrainBudget``, our choice) and a baseline trained under that budget. Margins are chosen on
the validation split (classes disjoint from test for open-world data), so a result carries the
validation scores and +TCM's changes on validation and on test, each with a paired-bootstrap
interval over the classes (``metrics.scores.run_pair_changes``).
"""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tcm_core.checks import check_margin
from tcm_core.metrics.scores import (PairChanges, bootstrap_pair_changes, embedding_scores_and_hits,
                                     pair_changes_dict)
from tcm_core.training import runs
from tcm_core.training.callbacks import Callback
from tcm_core.training.config import TrainConfig


@dataclass(frozen=True)
class RetrainBudget:
    """The reduced budget of a quick retrain when the backbone is trained too (our choice):
    at most ``max_train_samples`` training images and ``max_epochs`` epochs. Frozen-backbone
    runs keep their whole budget (the head alone trains in seconds)."""

    max_train_samples: int = 3000
    max_epochs: int = 1


@dataclass(frozen=True)
class RetrainResult:
    """OPIS / R@1 of the retrained +TCM run and of its baseline under the same budget, on test
    (``opis`` ...) and on validation (``val_*``; None for data without a validation split).
    ``test`` / ``validation``: +TCM's changes against that baseline, with intervals."""

    margin_pos: float
    margin_neg: float
    opis: float
    recall_at_1: float
    eps_opis: float
    baseline_opis: float
    baseline_recall_at_1: float
    out: Path
    reduced: bool
    seconds: float
    test: PairChanges | None = None
    validation: PairChanges | None = None
    val_opis: float | None = None
    val_recall_at_1: float | None = None
    val_eps_opis: float | None = None
    baseline_val_opis: float | None = None
    baseline_val_recall_at_1: float | None = None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["out"] = str(self.out)
        d["test"], d["validation"] = pair_changes_dict(self.test), pair_changes_dict(self.validation)
        return d


def resolve_paths(config: TrainConfig, root) -> TrainConfig:
    """Relative ``data_dir`` / ``weights`` paths of a saved config, against ``root`` (the folder
    they were written relative to, e.g. the app's project folder) when they do not exist from
    the working folder (the ready examples store ``../shared/...``)."""
    changes = {}
    for name in ("data_dir", "weights"):
        value = getattr(config, name)
        if value and not Path(value).is_absolute() and not Path(value).exists() and (Path(root) / value).exists():
            changes[name] = str((Path(root) / value).resolve())
    return config.replace(**changes) if changes else config


def quick_config(config: TrainConfig, margin_pos: float, margin_neg: float,
                 lambda_pos: float | None = None, lambda_neg: float | None = None,
                 budget: RetrainBudget = RetrainBudget()) -> tuple[TrainConfig, bool]:
    """(the +TCM config of a quick retrain, whether its budget was reduced)."""
    check_margin("margin_pos", margin_pos)
    check_margin("margin_neg", margin_neg)
    cfg = config.replace(
        tcm=True, margin_pos=float(margin_pos), margin_neg=float(margin_neg),
        lambda_pos=config.lambda_pos if lambda_pos is None else float(lambda_pos),
        lambda_neg=config.lambda_neg if lambda_neg is None else float(lambda_neg))
    if cfg.freeze_backbone:
        return cfg, False
    cap = cfg.max_train_samples
    small = dict(max_train_samples=min(cap or budget.max_train_samples, budget.max_train_samples),
                 epochs=min(cfg.epochs, budget.max_epochs))
    reduced = any(getattr(cfg, k) != v for k, v in small.items())
    return cfg.replace(**small), reduced


def _copy_run(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in (runs.CONFIG, runs.VAL_EMBEDDINGS, runs.EMBEDDINGS, runs.METRICS):
        if name != runs.VAL_EMBEDDINGS or (Path(src) / name).is_file():
            shutil.copy2(Path(src) / name, dst / name)


def retrain(config: TrainConfig, margin_pos: float, margin_neg: float, out, *,
            lambda_pos: float | None = None, lambda_neg: float | None = None,
            baseline: Path | None = None, budget: RetrainBudget = RetrainBudget(),
            callback: Callback | None = None, threads: int | None = 1,
            reuse_baseline: bool | None = None) -> RetrainResult:
    """Train ``config``'s +TCM run again with margins m+ / m- into ``out/tcm`` (a run pair).

    ``out/baseline`` is the baseline under the same budget: a copy of ``baseline`` (a run
    folder) when the budget is the original one, else trained here from the same initial
    weights and batch order (``reuse_baseline=True``: copy ``baseline`` anyway, it was trained
    under this budget, as in a margin search). Evaluation runs only after the last epoch. ``threads``: torch
    CPU threads while it trains (1 by default: a head's tiny steps run ~50x slower with 2
    threads on a busy 2-core machine); None leaves torch's setting alone. With one thread a
    pair trained here trains its two runs side by side, one core each (``pair_threads``: the
    same numbers as one after the other).
    """
    import torch

    from tcm_core.training.engine import torch_threads_kept, train

    out, started = Path(out), time.perf_counter()
    cfg, reduced = quick_config(config, margin_pos, margin_neg, lambda_pos, lambda_neg, budget)
    reuse = baseline is not None and (Path(baseline) / runs.METRICS).is_file() and (
        reuse_baseline if reuse_baseline is not None else not reduced)
    scores = {}
    with torch_threads_kept():  # ``threads`` only for this retrain
        if threads:
            torch.set_num_threads(int(threads))
        if reuse:
            _copy_run(Path(baseline), out / "baseline")
            # the copied baseline's curves on the other core while +TCM trains on this one
            with ThreadPoolExecutor(1, thread_name_prefix="tcm-baseline") as pool:
                kept = pool.submit(_saved_scores, out / "baseline", cfg.eval)
                train(cfg, out / "tcm", callback=callback, eval_last_only=True, scores=scores)
                scores["baseline"] = kept.result()
        else:
            train(cfg, out, compare=True, callback=callback, eval_last_only=True, side_by_side=True,
                  scores=scores)
    with torch_threads_kept():
        return _result(cfg, out, reduced, started, scores)


def _result(cfg: TrainConfig, out: Path, reduced: bool, started: float, scores: dict) -> RetrainResult:
    """The retrained pair's scores from its ``metrics.json``s and its changes with intervals
    (``seconds``: the training, not these bootstraps). ``scores``: ``SplitScores`` by run and
    split kept from training (a copied baseline's are computed from its embeddings)."""
    seconds = time.perf_counter() - started
    tcm, base = runs.load_metrics(out / "tcm"), runs.load_metrics(out / "baseline")
    val, base_val = tcm.get("validation") or {}, base.get("validation") or {}
    test_changes, val_changes = (_changes(out, split, cfg.eval, scores) for split in ("test", "val"))
    return RetrainResult(
        cfg.margin_pos, cfg.margin_neg, tcm["opis"], tcm["recall_at_1"], tcm["eps_opis"],
        base["opis"], base["recall_at_1"], out, reduced, seconds,
        test=test_changes, validation=val_changes, val_opis=val.get("opis"),
        val_recall_at_1=val.get("recall_at_1"), val_eps_opis=val.get("eps_opis"),
        baseline_val_opis=base_val.get("opis"), baseline_val_recall_at_1=base_val.get("recall_at_1"))


def _changes(out: Path, split: str, settings, scores: dict) -> PairChanges | None:
    """+TCM's changes on ``split`` with paired-bootstrap intervals (as ``run_pair_changes``,
    from the curves and hits kept from training where there are some); None without the
    split's embeddings (a baseline written before validation existed)."""
    sides = [scores.get(run, {}).get(split) or _saved_scores(out / run, settings, split).get(split)
             for run in runs.PAIR]
    if None in sides:
        return None
    (base, tcm) = sides
    return bootstrap_pair_changes(base.scores, tcm.scores, settings.eps, base.hits, tcm.hits)


def _saved_scores(run_dir: Path, settings, *splits: str) -> dict:
    """``SplitScores`` of a saved run's ``splits`` (default both) from its embedding files,
    by split; a split without its file is left out. Safe in a thread of its own (one numba
    thread; the numbers do not depend on it)."""
    import numba

    from tcm_core.training.engine import SplitScores

    if threading.current_thread() is not threading.main_thread():
        numba.set_num_threads(1)
    found = {}
    for split in splits or ("test", "val"):
        if (run_dir / runs.embeddings_file(split)).is_file():
            found[split] = SplitScores(*embedding_scores_and_hits(*runs.load_run_embeddings(run_dir, split), settings))
    return found


class ProgressCallback(Callback):
    """Calls ``report(fraction 0..1, text)`` as a retrain goes (for a progress bar). The
    fraction spans a run's remaining epochs (a frozen-backbone retrain keeps all of them),
    so it starts again at 0 for the second run of a pair trained one after the other; runs
    trained side by side report the mean of their fractions (the hooks come from two threads)."""

    def __init__(self, report):
        self._report = report
        self._epochs: dict[str, tuple[int, int]] = {}  # run -> (epochs, start epoch)
        self._done: dict[str, float] = {}  # runs in progress -> their fraction done

    def on_stage(self, text: str, done: int = 0, total: int = 0) -> None:
        self._report(0.0, text)

    def on_run_start(self, run: str, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        self._epochs[run], self._done[run] = (epochs, start_epoch), 0.0

    def on_run_end(self, run: str, metrics: dict) -> None:
        self._done.pop(run, None)

    def on_step(self, run: str, epoch: int, step: int, steps: int, loss: float) -> None:
        if step == steps or step % 10 == 0:  # a report per step would flood the page
            epochs, start = self._epochs.get(run, (0, 0))
            epochs = max(epochs, epoch + 1)
            done = (epoch - start) * steps + step
            self._done[run] = min(1.0, done / max(1, (epochs - start) * steps))
            fractions = list(self._done.values())
            self._report(sum(fractions) / len(fractions),
                        f"training {run}: epoch {epoch + 1}/{epochs}, step {step}/{steps}")
