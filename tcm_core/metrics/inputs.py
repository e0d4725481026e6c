"""Checking and converting (embeddings, labels) once, at the public boundary of the metrics.

Everything downstream works on an ``EmbeddingSet``: float32 embeddings (L2-normalized unless
the caller opts out), integer label codes ``0..C-1`` and the original class names.
See METHOD.md, "Conventions".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tcm_core.errors import TCMError


@dataclass(frozen=True, eq=False)
class EmbeddingSet:
    """Validated inputs. ``embeddings (n, d)`` float32 on the metric device, ``exact (n, d)`` the
    same in float64 on the CPU (for exact distances), ``codes (n,)`` int64 into ``classes``."""

    embeddings: torch.Tensor
    exact: np.ndarray
    codes: torch.Tensor
    classes: np.ndarray
    class_sizes: np.ndarray

    @property
    def n(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def usable(self) -> np.ndarray:
        """Boolean mask over ``classes``: classes with at least 2 samples (they have positives)."""
        return self.class_sizes >= 2


def _to_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TCMError(f"{name} could not be read as an array: {exc}") from None


def check_embeddings(embeddings, *, normalize: bool = True) -> np.ndarray:
    """Return embeddings as a finite float array of shape (n, d), or raise ``TCMError``."""
    arr = _to_numpy(embeddings, "embeddings")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TCMError(f"embeddings must be a numeric array; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise TCMError(f"embeddings must have shape (n, d); got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise TCMError(f"embeddings are empty (shape {arr.shape}); need at least 2 samples of dimension >= 1")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr).all(axis=1)).sum())
        raise TCMError(f"embeddings contain NaN or Inf in {bad} row(s); remove or fix those rows")
    norms = np.linalg.norm(arr, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise TCMError(
            f"embeddings have {zero.size} zero-norm row(s) (first: row {zero[0]}); "
            "they cannot be L2-normalized: remove them"
        )
    if not normalize and np.abs(norms - 1.0).max() > 1e-3:
        raise TCMError(
            "normalize=False needs unit-norm embeddings (distances assume them), but row norms "
            f"range from {norms.min():.4g} to {norms.max():.4g}; keep normalize=True"
        )
    return arr


def check_labels(labels, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (codes, classes): integer codes into the sorted unique class names."""
    arr = _to_numpy(labels, "labels")
    if arr.ndim != 1:
        raise TCMError(f"labels must have shape (n,); got shape {arr.shape}")
    if arr.shape[0] != n:
        raise TCMError(f"labels have length {arr.shape[0]} but embeddings have {n} rows; they must match")
    if arr.dtype == object:
        raise TCMError("labels must be integers or strings; got an object array")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or not np.all(arr == np.round(arr)):
            raise TCMError("labels must be integers or strings; got non-integer floating-point values")
        arr = arr.astype(np.int64)
    elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype.kind in "USb"):
        raise TCMError(f"labels must be integers or strings; got dtype {arr.dtype}")
    classes, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), classes


def embedding_set(embeddings, labels, *, normalize: bool = True, device=None) -> EmbeddingSet:
    """Validate and convert; fewer than 2 usable classes (>= 2 samples each) is an error."""
    arr = check_embeddings(embeddings, normalize=normalize)
    codes, classes = check_labels(labels, arr.shape[0])
    sizes = np.bincount(codes, minlength=len(classes))
    usable = int((sizes >= 2).sum())
    if usable < 2:
        raise TCMError(
            f"need at least 2 classes with >= 2 samples each to measure threshold consistency; "
            f"got {usable} (of {len(classes)} classes)"
        )
    device = torch.device(device) if device is not None else default_metric_device()
    if normalize:
        arr = arr / np.linalg.norm(arr, axis=1, keepdims=True)
    exact = np.ascontiguousarray(arr, dtype=np.float64)
    emb = torch.from_numpy(exact.astype(np.float32)).to(device)
    return EmbeddingSet(emb, exact, torch.from_numpy(codes).to(device), classes, sizes)


def default_metric_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
