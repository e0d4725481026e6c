"""2-D views of embeddings with more than three dimensions (METHOD.md, "The ArcFace toy": what
cannot be drawn on the sphere is projected): PCA at once, UMAP (cosine) in a background thread.

UMAP's first call compiles its numba kernels (20-40 s), so ``warm_up_umap`` runs it once on tiny
data in the background, and ``UmapJob`` never blocks the caller: poll ``.done``, then read
``.result`` (or ``.error``). Nothing here imports Streamlit.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

from tcm_core.errors import TCMError

UMAP_MAX_POINTS = 3000
_warm_up: threading.Thread | None = None
_warm_lock = threading.Lock()


def pca_2d(x) -> np.ndarray:
    """The first two principal components of ``x (n, d)`` -> ``(n, 2)`` (centred SVD)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise TCMError(f"PCA needs an (n, d) array with n >= 2 and d >= 2; got shape {x.shape}")
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)  # vt: (min(n, d), d)
    xy = centred @ vt[:2].T
    if xy.shape[1] < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    return xy


def stratified_sample(labels, max_points: int = UMAP_MAX_POINTS, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded sample of at most ``max_points``, each class keeping its
    share (at least one point per class while there is room)."""
    labels = np.asarray(labels)
    if max_points >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    take = np.maximum(1, np.floor(counts * max_points / len(labels)).astype(int))
    keep = np.concatenate([rng.choice(np.flatnonzero(inverse == i), size=min(t, n), replace=False)
                           for i, (t, n) in enumerate(zip(take, counts))])
    if len(keep) > max_points:
        keep = rng.choice(keep, size=max_points, replace=False)
    return np.sort(keep)


def _umap(x: np.ndarray, seed: int, n_neighbors: int = 15) -> np.ndarray:
    import umap  # slow to import (numba); only in the background thread

    reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed, n_jobs=1,
                        n_neighbors=min(n_neighbors, len(x) - 1), init="random" if len(x) < 50 else "spectral")
    with warnings.catch_warnings():  # "n_jobs overridden by random_state": the seed is wanted
        warnings.simplefilter("ignore", UserWarning)
        return reducer.fit_transform(x).astype(np.float64)


class UmapJob:
    """UMAP (2-D, cosine, fixed seed) of a stratified sample of ``embeddings (n, d)``, computed
    in a daemon thread started at construction.

    ``.indices`` (the sampled rows, known at once), ``.done``, then ``.result`` ``(k, 2)`` or
    ``.error`` (the exception, when it failed). ``.wait(timeout)`` blocks, for scripts and tests.
    """

    def __init__(self, embeddings, labels, *, max_points: int = UMAP_MAX_POINTS, seed: int = 0):
        x, labels = np.asarray(embeddings, dtype=np.float32), np.asarray(labels)
        if x.ndim != 2 or labels.shape != (len(x),):
            raise TCMError(f"embeddings (n, d) and labels (n,) must match; got {x.shape} and {labels.shape}")
        if len(x) < 5:
            raise TCMError(f"UMAP needs at least 5 points; got {len(x)}")
        self.indices = stratified_sample(labels, max_points, seed)
        self.labels = labels[self.indices]
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None
        self._x, self._seed = x[self.indices], seed
        self._thread = threading.Thread(target=self._run, name="umap-job", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = _umap(self._x, self._seed)
        except BaseException as exc:  # reported through .error, never lost in the thread
            self.error = exc
        finally:
            self._x = None

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done


def warm_up_umap() -> threading.Thread:
    """Start (once per process) a daemon thread that runs UMAP on 60 random points, so numba
    has compiled UMAP's kernels by the time a real job runs. Returns that thread."""
    global _warm_up
    with _warm_lock:
        if _warm_up is None:
            x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
            _warm_up = threading.Thread(target=lambda: _safe(_umap, x, 0), name="umap-warm-up", daemon=True)
            _warm_up.start()
        return _warm_up


def _safe(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:  # a failed warm-up only means the real job compiles instead
        pass
