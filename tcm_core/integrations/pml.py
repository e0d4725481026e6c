"""pytorch-metric-learning's ``AccuracyCalculator`` with threshold consistency added: the
metrics ``opis`` and ``eps_opis`` (METHOD.md) beside ``precision_at_1``, ``mean_average_precision_at_r``
and the rest, so ``testers.GlobalEmbeddingSpaceTester``, ``HookContainer`` and
``end_of_testing_hook``s report them under the usual key names (e.g. ``opis_level0``)::

    from pytorch_metric_learning import testers
    from tcm_core.integrations.pml import OpisAccuracyCalculator

    calc = OpisAccuracyCalculator(include=("precision_at_1", "opis", "eps_opis"), k=1)
    tester = testers.GlobalEmbeddingSpaceTester(accuracy_calculator=calc)
    accuracies = tester.test({"val": val_dataset}, epoch, model)
    accuracies["val"]["opis_level0"], accuracies["val"]["eps_opis_level0"]

OPIS is a property of one set of embeddings: all unordered pairs of the evaluated items. When
the reference set includes the queries (a split compared with itself, the testers' default), it
is measured on the reference set; otherwise on the queries. The calibration range, K, beta and
epsilon come from ``settings`` (``metrics.EvalSettings``; defaults as in METHOD.md). A set with
fewer than 2 classes of >= 2 samples gives NaN with a warning, as PML does for undefined metrics.
Both are one number per set (OPIS already weighs every class equally), also under
``avg_of_avgs`` or ``return_per_class``.
Without faiss installed, nearest neighbours default to PML's exact ``CustomKNN`` over cosine
similarity (PML's own default needs faiss).
"""

from __future__ import annotations

import importlib.util
import math
import warnings

from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN

from tcm_core.errors import TCMError
from tcm_core.metrics.evaluation import EvalSettings
from tcm_core.metrics.scores import RunScores, embedding_scores

OPIS_METRICS = ("opis", "eps_opis")
_UNDEFINED = object()  # this call's embeddings have no OPIS (warned once)


class OpisAccuracyCalculator(AccuracyCalculator):
    """``AccuracyCalculator`` plus ``opis`` and ``eps_opis`` (lower is better).

    Takes every ``AccuracyCalculator`` argument and ``settings``: how OPIS is measured. Both
    metrics share one pass over the pairs per ``get_accuracy`` call.
    """

    def __init__(self, *args, settings: EvalSettings = EvalSettings(), knn_func=None, **kwargs):
        if not isinstance(settings, EvalSettings):
            raise TCMError(f"settings must be a tcm_core.metrics.EvalSettings; got {type(settings).__name__}")
        self.settings = settings
        self._scores: RunScores | object | None = None
        if knn_func is None and importlib.util.find_spec("faiss") is None:
            knn_func = CustomKNN(CosineSimilarity())
        super().__init__(*args, knn_func=knn_func, **kwargs)

    def _get_accuracy(self, function_dict, **kwargs):
        self._scores = None  # new embeddings: compute the curves once, for both metrics
        try:
            return super()._get_accuracy(function_dict, **kwargs)
        finally:
            self._scores = None

    def calculate_opis(self, query, query_labels, reference, reference_labels, ref_includes_query, **kwargs):
        scores = self._opis_scores(query, query_labels, reference, reference_labels, ref_includes_query)
        return math.nan if scores is None else scores.opis

    def calculate_eps_opis(self, query, query_labels, reference, reference_labels, ref_includes_query,
                           **kwargs):
        scores = self._opis_scores(query, query_labels, reference, reference_labels, ref_includes_query)
        return math.nan if scores is None else scores.eps_opis

    def _opis_scores(self, query, query_labels, reference, reference_labels, ref_includes_query):
        if self._scores is None:
            x, y = (reference, reference_labels) if ref_includes_query else (query, query_labels)
            try:
                self._scores = embedding_scores(x, y, self.settings)
            except TCMError as exc:
                warnings.warn(f"OPIS is undefined here ({exc}); reporting NaN", RuntimeWarning, stacklevel=3)
                self._scores = _UNDEFINED
        return None if self._scores is _UNDEFINED else self._scores
