"""What a slider move recomputes: a run's utility curves from its fine distance histograms,
with OPIS and eps-OPIS, for one run or a baseline / +TCM pair, and how +TCM changed them with
an interval (a paired bootstrap over the test classes, or across seeds for repeats). Timed in
``bench/bench_threshold.py``; the app's threshold page calls it after every move.
``embedding_pair_changes`` / ``run_pair_changes`` give the same changes from a pair's embeddings
(exact curves) of one split, test or validation: what the margins page chooses margins on."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.metrics.change import points_change, relative_change
from tcm_core.metrics.evaluation import EvalSettings
from tcm_core.metrics.histograms import DistanceHistograms
from tcm_core.metrics.opis import eps_opis, opis
from tcm_core.metrics.inputs import embedding_set
from tcm_core.metrics.retrieval import ClassHits, class_hits_from_set
from tcm_core.metrics.uncertainty import (Interval, bootstrap_change, bootstrap_recall_change,
                                          seed_interval)
from tcm_core.metrics.utility import UtilityCurves, utility_curves, utility_curves_from_set


@dataclass(frozen=True)
class RunScores:
    """One run's curves under some ``EvalSettings`` and the two scores they give."""

    curves: UtilityCurves
    opis: float
    eps_opis: float


def scores_from_histograms(hist: DistanceHistograms, settings: EvalSettings = EvalSettings()) -> RunScores:
    curves = hist.curves(**settings.curve_options)
    return RunScores(curves, opis(curves), eps_opis(curves, settings.eps))


def pair_scores(base: DistanceHistograms, tcm: DistanceHistograms,
                settings: EvalSettings = EvalSettings()) -> tuple[RunScores, RunScores]:
    """(baseline's, +TCM's) scores under the same settings."""
    return scores_from_histograms(base, settings), scores_from_histograms(tcm, settings)


def exact_scores(scores: RunScores, metrics: dict, settings: EvalSettings) -> RunScores:
    """``scores`` (from the histograms, within 0.1% of exact) with OPIS and ε-OPIS replaced by the
    run's exact values from ``metrics.json`` (computed from the pairs, as ``evaluate`` does) when
    ``settings`` are the ones those were computed with."""
    try:
        recorded = EvalSettings.from_dict({f.name: metrics[f.name] for f in fields(EvalSettings)})
    except (KeyError, TypeError, TCMError):
        return scores
    if recorded != settings:
        return scores
    return replace(scores, opis=float(metrics["opis"]), eps_opis=float(metrics["eps_opis"]))


@dataclass(frozen=True)
class PairChanges:
    """How +TCM changed a pair's scores, each as an ``uncertainty.Interval``: OPIS and eps-OPIS
    in percent, R@1 in points (None where the hits are not known)."""

    opis: Interval
    eps_opis: Interval
    recall_at_1: Interval | None = None


def bootstrap_pair_changes(base: RunScores, tcm: RunScores, eps: float, base_hits: ClassHits | None = None,
                           tcm_hits: ClassHits | None = None) -> PairChanges:
    """One pair's changes with paired bootstraps over its test classes (``uncertainty``)."""
    opis_ci, eps_ci = bootstrap_change(base.curves, tcm.curves, eps)
    recall = None if base_hits is None or tcm_hits is None else bootstrap_recall_change(base_hits, tcm_hits)
    return PairChanges(opis_ci, eps_ci, recall)


def pair_changes_dict(changes: PairChanges | None) -> dict | None:
    """Plain JSON-able ``{"opis", "eps_opis", "recall_at_1"}`` of ``Interval.as_dict()``s."""
    if changes is None:
        return None
    return {name: None if iv is None else iv.as_dict()
            for name, iv in (("opis", changes.opis), ("eps_opis", changes.eps_opis),
                             ("recall_at_1", changes.recall_at_1))}


def seed_pair_changes(pairs: list[tuple[RunScores, RunScores]], recalls: list[tuple[float, float]]) -> PairChanges:
    """Repeats' changes: per seed ``(baseline, +TCM)`` scores and R@1s -> the mean change with a
    Student t interval across seeds (paired: each seed's own change)."""
    return PairChanges(seed_interval([relative_change(b.opis, t.opis) for b, t in pairs]),
                       seed_interval([relative_change(b.eps_opis, t.eps_opis) for b, t in pairs]),
                       seed_interval([points_change(b, t) for b, t in recalls]))


def embedding_scores(embeddings, labels, settings: EvalSettings = EvalSettings()) -> RunScores:
    """One run's exact curves (``utility_curves``) and scores from its embeddings."""
    curves = utility_curves(embeddings, labels, normalize=settings.normalize, **settings.curve_options)
    return RunScores(curves, opis(curves), eps_opis(curves, settings.eps))


def embedding_scores_and_hits(embeddings, labels, settings: EvalSettings = EvalSettings()) -> tuple[RunScores, ClassHits]:
    """(``embedding_scores``, R@1's ``class_hits``) of one split, from one ``EmbeddingSet``."""
    es = embedding_set(embeddings, labels, normalize=settings.normalize)
    curves = utility_curves_from_set(es, **settings.curve_options)
    return RunScores(curves, opis(curves), eps_opis(curves, settings.eps)), class_hits_from_set(es)


def embedding_pair_changes(base_embeddings, base_labels, tcm_embeddings, tcm_labels,
                           settings: EvalSettings = EvalSettings()) -> tuple[RunScores, RunScores, PairChanges]:
    """(baseline's scores, +TCM's scores, the changes with paired-bootstrap intervals over the
    classes, R@1 included) of a pair's embeddings of one split."""
    base, base_hits = embedding_scores_and_hits(base_embeddings, base_labels, settings)
    tcm, tcm_hits = embedding_scores_and_hits(tcm_embeddings, tcm_labels, settings)
    return base, tcm, bootstrap_pair_changes(base, tcm, settings.eps, base_hits, tcm_hits)


def run_pair_changes(pair_root, split: str = "test", settings: EvalSettings = EvalSettings()) -> PairChanges | None:
    """``embedding_pair_changes`` of ``<pair_root>/{baseline,tcm}``'s ``split`` ("test" or
    "val"); None when a run lacks that split's embeddings (runs written before validation)."""
    from tcm_core.training import runs  # lazy: training imports metrics

    name = runs.embeddings_file(split)
    sides = [Path(pair_root) / side for side in runs.PAIR]
    if not all((d / name).is_file() for d in sides):
        return None
    (bx, by), (tx, ty) = (runs.load_run_embeddings(d, split) for d in sides)
    return embedding_pair_changes(bx, by, tx, ty, settings)[2]
