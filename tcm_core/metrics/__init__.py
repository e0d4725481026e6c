"""Threshold-consistency and retrieval metrics (METHOD.md): utility curves, OPIS, eps-OPIS,
R@k, MAP@R, per-class rates at a threshold, pair similarities, and one evaluation that bundles
them under ``EvalSettings``."""

from tcm_core.metrics.change import points_change, relative_change
from tcm_core.metrics.evaluation import EvalSettings, Evaluation, evaluate, evaluate_embedding_set
from tcm_core.metrics.histograms import DistanceHistograms, distance_histograms
from tcm_core.metrics.inputs import EmbeddingSet, embedding_set
from tcm_core.metrics.opis import eps_opis, opis, worst_classes
from tcm_core.metrics.rates import class_rates
from tcm_core.metrics.retrieval import map_at_r, recall_at_k
from tcm_core.metrics.scores import RunScores, pair_scores, scores_from_histograms
from tcm_core.metrics.utility import (
    DEFAULT_BETA,
    DEFAULT_EPS,
    DEFAULT_FAR_RANGE,
    DEFAULT_NUM_THRESHOLDS,
    UtilityCurves,
    calibration_range,
    utility_curves,
    utility_from_rates,
)

__all__ = [
    "DEFAULT_BETA", "DEFAULT_EPS", "DEFAULT_FAR_RANGE", "DEFAULT_NUM_THRESHOLDS",
    "DistanceHistograms", "EmbeddingSet", "EvalSettings", "Evaluation", "RunScores",
    "UtilityCurves", "calibration_range", "class_rates", "distance_histograms", "embedding_set",
    "eps_opis", "evaluate", "evaluate_embedding_set", "map_at_r", "opis", "pair_scores",
    "points_change", "recall_at_k", "relative_change", "scores_from_histograms",
    "utility_curves", "utility_from_rates", "worst_classes",
]
