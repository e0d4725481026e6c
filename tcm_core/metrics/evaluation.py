"""One evaluation of a set of embeddings: accuracy and threshold consistency together.

Used by the ``evaluate`` CLI, the trainer after each epoch and the app. ``EvalSettings`` is the
one type of evaluation settings: the settings that change OPIS (calibration range, K, beta,
epsilon) travel with every number (METHOD.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from tcm_core.checks import (check_beta, check_distance_range, check_eps, check_far_range,
                             check_num_thresholds)
from tcm_core.errors import TCMError
from tcm_core.metrics.inputs import EmbeddingSet, embedding_set
from tcm_core.metrics.opis import eps_opis, opis
from tcm_core.metrics.uncertainty import bootstrap_scores
from tcm_core.metrics.retrieval import ClassHits, map_at_r_from_set, recall_at_k_from_set
from tcm_core.metrics.utility import (DEFAULT_BETA, DEFAULT_EPS, DEFAULT_FAR_RANGE,
                                      DEFAULT_NUM_THRESHOLDS, UtilityCurves, utility_curves_from_set)


@dataclass(frozen=True)
class EvalSettings:
    """How OPIS is measured; ``distance_range`` overrides ``far_range`` when given.

    Checked at construction, so a bad setting fails before any pair is computed.
    """

    far_range: tuple[float, float] = DEFAULT_FAR_RANGE
    distance_range: tuple[float, float] | None = None
    num_thresholds: int = DEFAULT_NUM_THRESHOLDS
    beta: float = DEFAULT_BETA
    eps: float = DEFAULT_EPS
    normalize: bool = True

    def __post_init__(self):
        object.__setattr__(self, "far_range", check_far_range(self.far_range))
        if self.distance_range is not None:
            object.__setattr__(self, "distance_range", check_distance_range(self.distance_range))
        object.__setattr__(self, "num_thresholds", check_num_thresholds(self.num_thresholds))
        object.__setattr__(self, "beta", check_beta(self.beta))
        object.__setattr__(self, "eps", check_eps(self.eps))

    @property
    def curve_options(self) -> dict:
        """The keyword arguments of ``utility_curves`` and ``DistanceHistograms.curves``."""
        return dict(far_range=self.far_range, distance_range=self.distance_range,
                    num_thresholds=self.num_thresholds, beta=self.beta)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["far_range"] = list(self.far_range)
        d["distance_range"] = None if self.distance_range is None else list(self.distance_range)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EvalSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TCMError(f"evaluation settings have unknown fields {unknown}; valid: {sorted(known)}")
        return cls(**d)


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
    opis_ci: tuple[float, float] | None = None  # 95% bootstrap over the classes (uncertainty)
    eps_opis_ci: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("far_range", "distance_range", "opis_ci", "eps_opis_ci"):
            d[key] = list(d[key]) if d[key] is not None else None
        return d


def evaluate_embedding_set(es: EmbeddingSet, settings: EvalSettings = EvalSettings(),
                           curves: UtilityCurves | None = None, hits: ClassHits | None = None) -> Evaluation:
    """``curves``: ``es``'s utility curves under ``settings`` when the caller has them already;
    ``hits``: ``es``'s R@1 hits per class likewise (``class_hits_from_set(es)``: its R@1 is
    the same count over n, so the nearest-neighbour pass is not made twice)."""
    if curves is None:
        curves = utility_curves_from_set(es, **settings.curve_options)
    opis_ci, eps_ci = bootstrap_scores(curves, settings.eps)
    return Evaluation(
        n=es.n, dim=es.dim, n_classes=int(curves.classes.size),
        skipped_classes=int(curves.skipped_classes.size),
        recall_at_1=recall_at_k_from_set(es, (1,))[1] if hits is None else hits.recall_at_1,
        map_at_r=map_at_r_from_set(es),
        opis=opis(curves), eps_opis=eps_opis(curves, settings.eps),
        t_min=curves.t_min, t_max=curves.t_max,
        far_range=curves.far_range, distance_range=curves.distance_range,
        num_thresholds=settings.num_thresholds, beta=settings.beta, eps=settings.eps,
        normalize=settings.normalize, opis_ci=(opis_ci.low, opis_ci.high),
        eps_opis_ci=(eps_ci.low, eps_ci.high),
    )


def evaluate(embeddings, labels, settings: EvalSettings = EvalSettings(), *, device=None) -> Evaluation:
    """R@1, MAP@R, OPIS and eps-OPIS of ``embeddings (n, d)`` with ``labels (n,)``."""
    es = embedding_set(embeddings, labels, normalize=settings.normalize, device=device)
    return evaluate_embedding_set(es, settings)
