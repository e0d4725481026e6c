"""Checking and converting (embeddings, labels) once, at the public boundary of the metrics.

Everything downstream works on an ``EmbeddingSet``: float32 embeddings (L2-normalized unless
the caller opts out), integer label codes ``0..C-1`` and the original class names.
See METHOD.md, "Conventions".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tcm_core.checks import check_embeddings, check_labels
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
