"""2-D views of embeddings with more than three dimensions (METHOD.md, "The ArcFace toy": what
cannot be drawn on the sphere is projected): PCA, and UMAP (cosine) on a class-stratified
sample. UMAP takes seconds (and compiles for 20-40 s the first time): the background task that
runs it is ``tasks.umap``.
"""

from __future__ import annotations

import warnings

import numpy as np

from tcm_core.errors import TCMError

UMAP_MAX_POINTS = 3000


def pca_2d(x) -> np.ndarray:
    """The first two principal components of ``x (n, d)`` -> ``(n, 2)`` (centerd SVD)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise TCMError(f"PCA needs an (n, d) array with n >= 2 and d >= 2; got shape {x.shape}")
    centerd = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centerd, full_matrices=False)  # vt: (min(n, d), d)
    xy = centerd @ vt[:2].T
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


def umap_2d(x: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """UMAP of ``x (n, d)`` to ``(n, 2)``: cosine metric, fixed seed, one thread."""
    import umap  # slow to import (numba): only when a projection is asked for

    reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed, n_jobs=1,
                        n_neighbors=min(n_neighbors, len(x) - 1), init="random" if len(x) < 50 else "spectral")
    with warnings.catch_warnings():  # "n_jobs overridden by random_state": the seed is wanted
        warnings.simplefilter("ignore", UserWarning)
        return reducer.fit_transform(x).astype(np.float64)
