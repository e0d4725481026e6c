"""Choosing TCM's margins: what m+ and m- would penalize on a run's test pairs, and a quick
retrain with chosen margins (METHOD.md, "TCM").

``pair_similarities`` streams the cosine similarities of all unordered test pairs ``a < b``
into fine histograms (positives and negatives apart) with per-bin sums of ``s``, in row blocks
(never the full ``n x n``). Every slider move is then answered from the histograms alone:
``penalized_shares`` (share of hard positives ``s <= m+`` and hard negatives ``s >= m-``) and
``tcm_value`` (the TCM loss over all test pairs), exact up to linear interpolation inside one bin.

``retrain`` trains the +TCM run of a run's config again with other margins, reusing the
training engine: frozen-backbone runs train only their head on the cached backbone features
(same budget as the original run, so the original baseline is the fair comparison); other runs
get a reduced budget (``RetrainBudget``, our choice) and a baseline trained under that budget.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tcm_core.errors import TCMError
from tcm_core.training import runs
from tcm_core.training.callbacks import Callback
from tcm_core.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BINS = 2000  # bin width 0.001 in cosine similarity
BLOCK_ROWS = 512


@dataclass(frozen=True, eq=False)
class SimilarityHistograms:
    """Pair cosine similarities on ``edges (bins + 1,)`` over [-1, 1]: ``pos_count/neg_count
    (bins,)`` pair counts and ``pos_sum/neg_sum (bins,)`` sums of ``s`` per bin."""

    edges: np.ndarray
    pos_count: np.ndarray
    neg_count: np.ndarray
    pos_sum: np.ndarray
    neg_sum: np.ndarray

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def positive_pairs(self) -> int:
        return int(self.pos_count.sum())

    @property
    def negative_pairs(self) -> int:
        return int(self.neg_count.sum())


def pair_similarities(embeddings, labels, *, normalize: bool = True, num_bins: int = DEFAULT_BINS,
                      block_rows: int = BLOCK_ROWS) -> SimilarityHistograms:
    """Histograms of ``s = cos(x_a, x_b)`` of all pairs ``a < b`` of ``embeddings (n, d)``."""
    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels).reshape(-1)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise TCMError(f"embeddings must be (n, d) and labels (n,); got {x.shape} and {y.shape}")
    if x.shape[0] < 2:
        raise TCMError(f"need at least 2 embeddings to form a pair; got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise TCMError("embeddings contain NaN or infinite values")
    if not isinstance(num_bins, (int, np.integer)) or num_bins < 2:
        raise TCMError(f"num_bins must be an integer >= 2; got {num_bins!r}")
    if normalize:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if (norms == 0).any():
            raise TCMError("an embedding has norm 0 and cannot be normalized")
        x = x / norms
    x = x.astype(np.float32)
    n, edges = x.shape[0], np.linspace(-1.0, 1.0, num_bins + 1)
    counts, sums = np.zeros((2, num_bins)), np.zeros((2, num_bins))
    cols = np.arange(n)
    for start in range(0, n - 1, block_rows):
        rows = np.arange(start, min(n, start + block_rows))
        s = np.clip(x[rows] @ x.T, -1.0, 1.0)  # (b, n)
        upper = cols[None, :] > rows[:, None]  # pairs a < b only
        same = (y[rows][:, None] == y[None, :])
        for k, mask in enumerate((upper & same, upper & ~same)):
            v = s[mask].astype(np.float64)
            idx = np.minimum(((v + 1.0) * (num_bins / 2.0)).astype(np.int64), num_bins - 1)
            counts[k] += np.bincount(idx, minlength=num_bins)
            sums[k] += np.bincount(idx, weights=v, minlength=num_bins)
    return SimilarityHistograms(edges, counts[0], counts[1], sums[0], sums[1])


def _check_margin(name: str, m: float) -> float:
    if not -1.0 <= float(m) <= 1.0:
        raise TCMError(f"{name} is a cosine similarity and must lie in [-1, 1]; got {m}")
    return float(m)


def _below(h: SimilarityHistograms, count: np.ndarray, sums: np.ndarray, m: float):
    """(pairs with s <= m, sum of their s), interpolating linearly inside m's bin."""
    bins = count.size
    pos = (m + 1.0) * bins / 2.0
    j = min(int(pos), bins - 1)
    f = min(1.0, pos - j)
    return count[:j].sum() + f * count[j], sums[:j].sum() + f * sums[j]


def hard_pairs(h: SimilarityHistograms, margin_pos: float, margin_neg: float):
    """((n, sum s) of positives with s <= m+, (n, sum s) of negatives with s >= m-)."""
    m_pos, m_neg = _check_margin("margin_pos", margin_pos), _check_margin("margin_neg", margin_neg)
    pos = _below(h, h.pos_count, h.pos_sum, m_pos)
    n_below, s_below = _below(h, h.neg_count, h.neg_sum, m_neg)
    neg = (h.neg_count.sum() - n_below, h.neg_sum.sum() - s_below)
    return pos, neg


def penalized_shares(h: SimilarityHistograms, margin_pos: float, margin_neg: float) -> tuple[float, float]:
    """(share of positive pairs with s <= m+, share of negative pairs with s >= m-); 0 when a
    side has no pairs at all."""
    (n_pos, _), (n_neg, _) = hard_pairs(h, margin_pos, margin_neg)
    share_pos = n_pos / h.positive_pairs if h.positive_pairs else 0.0
    share_neg = n_neg / h.negative_pairs if h.negative_pairs else 0.0
    return float(share_pos), float(share_neg)


HARD_EPS = 1e-9  # fewer interpolated hard pairs than this count as none (the term is 0)


def tcm_terms(h: SimilarityHistograms, margin_pos: float = 0.9, margin_neg: float = 0.5,
              lambda_pos: float = 1.0, lambda_neg: float = 1.0) -> tuple[float, float]:
    """(lambda+ * mean (m+ - s) over hard positives, lambda- * mean (s - m-) over hard negatives)."""
    for name, lam in (("lambda_pos", lambda_pos), ("lambda_neg", lambda_neg)):
        if not float(lam) >= 0.0:
            raise TCMError(f"{name} must be >= 0; got {lam}")
    (n_pos, s_pos), (n_neg, s_neg) = hard_pairs(h, margin_pos, margin_neg)
    pos = (margin_pos * n_pos - s_pos) / n_pos if n_pos > HARD_EPS else 0.0
    neg = (s_neg - margin_neg * n_neg) / n_neg if n_neg > HARD_EPS else 0.0
    return float(lambda_pos * max(pos, 0.0)), float(lambda_neg * max(neg, 0.0))


def tcm_value(h: SimilarityHistograms, margin_pos: float = 0.9, margin_neg: float = 0.5,
              lambda_pos: float = 1.0, lambda_neg: float = 1.0) -> float:
    """L_TCM that these margins give over all test pairs (a term with no hard pair is 0)."""
    return float(sum(tcm_terms(h, margin_pos, margin_neg, lambda_pos, lambda_neg)))


# ---------------------------------------------------------------- quick retrain


@dataclass(frozen=True)
class RetrainBudget:
    """The reduced budget of a quick retrain when the backbone is trained too (our choice):
    at most ``max_train_samples`` training images and ``max_epochs`` epochs. Frozen-backbone
    runs keep their whole budget (the head alone trains in seconds)."""

    max_train_samples: int = 3000
    max_epochs: int = 1


@dataclass(frozen=True)
class RetrainResult:
    """OPIS / R@1 of the retrained +TCM run and of its baseline under the same budget."""

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

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["out"] = str(self.out)
        return d


def resolve_paths(config: TrainConfig, root=ROOT) -> TrainConfig:
    """Relative ``data_dir`` / ``weights`` paths of a saved config, against the project root
    when they do not exist from the working folder (the examples store ``../shared/...``)."""
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
    _check_margin("margin_pos", margin_pos)
    _check_margin("margin_neg", margin_neg)
    cfg = resolve_paths(config).replace(
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
    for name in (runs.CONFIG, runs.METRICS, runs.EMBEDDINGS):
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
    under this budget, as in a sweep). Evaluation runs only after the last epoch. ``threads``: torch
    CPU threads while it trains (1 by default: a head's tiny steps run ~50x slower with 2
    threads on a busy 2-core machine); None leaves torch's setting alone.
    """
    import torch

    from tcm_core.training.engine import train

    out, started = Path(out), time.perf_counter()
    cfg, reduced = quick_config(config, margin_pos, margin_neg, lambda_pos, lambda_neg, budget)
    reuse = baseline is not None and (Path(baseline) / runs.METRICS).is_file() and (
        reuse_baseline if reuse_baseline is not None else not reduced)
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(int(threads))
        if reuse:
            _copy_run(Path(baseline), out / "baseline")
            train(cfg, out / "tcm", callback=callback, eval_last_only=True)
        else:
            train(cfg, out, compare=True, callback=callback, eval_last_only=True)
    finally:
        torch.set_num_threads(before)
    tcm, base = runs.load_metrics(out / "tcm"), runs.load_metrics(out / "baseline")
    return RetrainResult(float(margin_pos), float(margin_neg), tcm["opis"], tcm["recall_at_1"],
                         tcm["eps_opis"], base["opis"], base["recall_at_1"], out, reduced,
                         time.perf_counter() - started)


class ProgressCallback(Callback):
    """Calls ``report(fraction 0..1, text)`` as a retrain goes (for a progress bar)."""

    def __init__(self, report):
        self.report, self._runs, self._done = report, 0, 0

    def on_stage(self, text: str, done: int = 0, total: int = 0) -> None:
        self.report(0.0, text)

    def on_step(self, run: str, epoch: int, step: int, steps: int, loss: float) -> None:
        if step == steps or step % 10 == 0:
            self.report(min(1.0, step / max(1, steps)), f"training {run}: step {step}/{steps}")
