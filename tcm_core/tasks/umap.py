"""UMAP in the background: the sphere page's projection of high-dimensional runs.

UMAP's first call compiles its numba kernels (20-40 s), so ``warm_up_umap`` runs it once on tiny
data in the background, and ``UmapJob`` (a ``BackgroundTask``) never blocks the caller: poll
``.done``, then read ``.result`` (or ``.error``).
"""

from __future__ import annotations

import threading

import numpy as np

from tcm_core.errors import TCMError
from tcm_core.geometry.projection import UMAP_MAX_POINTS, stratified_sample, umap_2d
from tcm_core.tasks.base import BackgroundTask

_warm_up: UmapJob | None = None
_warm_lock = threading.Lock()


class UmapJob(BackgroundTask):
    """UMAP (2-D, cosine, fixed seed) of a stratified sample of ``embeddings (n, d)``, started
    at construction.

    ``.indices`` (the sampled rows, known at once) and ``.labels`` (theirs), ``.done``, then
    ``.result`` ``(k, 2)`` or ``.error`` (the exception, when it failed; ``snapshot().error``
    says it in words). ``.wait(timeout)`` blocks, for scripts and tests.
    """

    def __init__(self, embeddings, labels, *, max_points: int = UMAP_MAX_POINTS, seed: int = 0):
        x, labels = np.asarray(embeddings, dtype=np.float32), np.asarray(labels)
        if x.ndim != 2 or labels.shape != (len(x),):
            raise TCMError(f"embeddings (n, d) and labels (n,) must match; got {x.shape} and {labels.shape}")
        if len(x) < 5:
            raise TCMError(f"UMAP needs at least 5 points; got {len(x)}")
        super().__init__("UMAP job")
        self.indices = stratified_sample(labels, max_points, seed)
        self.labels = labels[self.indices]
        self.result: np.ndarray | None = None
        self.error: Exception | None = None
        self._x, self._seed = x[self.indices], seed
        self.start()

    def run(self) -> None:
        try:
            self.result = umap_2d(self._x, self._seed)
        except Exception as exc:  # kept for the page, and reported as the task's failure
            self.error = exc
            raise
        finally:
            self._x = None


def warm_up_umap() -> UmapJob:
    """Start (once per process) UMAP on 60 random points in the background, so numba has
    compiled UMAP's kernels by the time a real job runs (a failed warm-up only means the real
    job compiles instead). Returns that job."""
    global _warm_up
    with _warm_lock:
        if _warm_up is None:
            x = np.random.default_rng(0).normal(size=(60, 8))
            _warm_up = UmapJob(x, np.zeros(60, dtype=int), max_points=60, seed=0)
        return _warm_up
