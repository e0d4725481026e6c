"""Threshold-consistency and retrieval metrics (METHOD.md)."""

from tcm_core.metrics.histograms import DistanceHistograms, distance_histograms
from tcm_core.metrics.inputs import EmbeddingSet, embedding_set
from tcm_core.metrics.opis import eps_opis, opis, worst_classes
from tcm_core.metrics.retrieval import map_at_r, recall_at_k
from tcm_core.metrics.utility import (
    DEFAULT_FAR_RANGE,
    DEFAULT_NUM_THRESHOLDS,
    UtilityCurves,
    calibration_range,
    utility_curves,
    utility_from_rates,
)

__all__ = [
    "DEFAULT_FAR_RANGE", "DEFAULT_NUM_THRESHOLDS", "DistanceHistograms", "EmbeddingSet",
    "UtilityCurves", "calibration_range", "distance_histograms", "embedding_set", "eps_opis",
    "map_at_r", "opis", "recall_at_k", "utility_curves", "utility_from_rates", "worst_classes",
]
