"""One evaluation of a set of embeddings: accuracy and threshold consistency together.

Used by the ``evaluate`` CLI, the trainer after each epoch and the app. The settings that
change OPIS (calibration range, K, beta, epsilon) travel with every number (METHOD.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tcm_core.metrics.inputs import EmbeddingSet, embedding_set
from tcm_core.metrics.opis import check_eps, eps_opis, opis
from tcm_core.metrics.retrieval import set_map_at_r, set_recall_at_k
from tcm_core.metrics.utility import (
    DEFAULT_FAR_RANGE,
    DEFAULT_NUM_THRESHOLDS,
    check_beta,
    check_distance_range,
    check_far_range,
    check_num_thresholds,
    set_utility_curves,
)


@dataclass(frozen=True)
class EvalSettings:
    """How OPIS is measured; ``distance_range`` overrides ``far_range`` when given."""

    far_range: tuple[float, float] = DEFAULT_FAR_RANGE
    distance_range: tuple[float, float] | None = None
    num_thresholds: int = DEFAULT_NUM_THRESHOLDS
    beta: float = 1.0
    eps: float = 0.1
    normalize: bool = True

    def __post_init__(self):  # fail before any pair is computed
        object.__setattr__(self, "far_range", check_far_range(self.far_range))
        if self.distance_range is not None:
            object.__setattr__(self, "distance_range", check_distance_range(self.distance_range))
        object.__setattr__(self, "num_thresholds", check_num_thresholds(self.num_thresholds))
        object.__setattr__(self, "beta", check_beta(self.beta))
        object.__setattr__(self, "eps", check_eps(self.eps))


@dataclass(frozen=True)
class Evaluation:
    n: int
    dim: int
    n_classes: int
    skipped_classes: int
    recall_at_1: float
    map_at_r: float
    opis: float
    eps_opis: float
    t_min: float
    t_max: float
    far_range: tuple[float, float] | None
    distance_range: tuple[float, float] | None
    num_thresholds: int
    beta: float
    eps: float
    normalize: bool

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("far_range", "distance_range"):
            d[key] = list(d[key]) if d[key] is not None else None
        return d


def evaluate_set(es: EmbeddingSet, settings: EvalSettings = EvalSettings()) -> Evaluation:
    curves = set_utility_curves(es, far_range=settings.far_range,
                                distance_range=settings.distance_range,
                                num_thresholds=settings.num_thresholds, beta=settings.beta)
    return Evaluation(
        n=es.n, dim=es.dim, n_classes=int(curves.classes.size),
        skipped_classes=int(curves.skipped_classes.size),
        recall_at_1=set_recall_at_k(es, (1,))[1], map_at_r=set_map_at_r(es),
        opis=opis(curves), eps_opis=eps_opis(curves, settings.eps),
        t_min=curves.t_min, t_max=curves.t_max,
        far_range=curves.far_range, distance_range=curves.distance_range,
        num_thresholds=settings.num_thresholds, beta=settings.beta, eps=settings.eps,
        normalize=settings.normalize,
    )


def evaluate(embeddings, labels, settings: EvalSettings = EvalSettings(), *, device=None) -> Evaluation:
    """R@1, MAP@R, OPIS and eps-OPIS of ``embeddings (n, d)`` with ``labels (n,)``."""
    es = embedding_set(embeddings, labels, normalize=settings.normalize, device=device)
    return evaluate_set(es, settings)
