"""Retrieval accuracy: Recall@k and MAP@R (METHOD.md, "Accuracy").

Every sample is a query against all others (cosine similarity, self excluded); rows are
processed in blocks so memory stays bounded.
"""

from __future__ import annotations

import numpy as np
import torch

from tcm_core.errors import TCMError
from tcm_core.metrics.inputs import EmbeddingSet, embedding_set
from tcm_core.metrics.pairs import BLOCK_BYTES


def _neighbour_blocks(es: EmbeddingSet, k: int):
    """Yield ``(rows, same (r, k) bool)``: whether each query's j-th nearest neighbour shares its class."""
    n = es.n
    rows = int(max(1, min(n, BLOCK_BYTES // (16 * n))))
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        sims = es.embeddings[i0:i1] @ es.embeddings.T  # (r, n)
        sims[torch.arange(i1 - i0), torch.arange(i0, i1)] = -float("inf")
        idx = sims.topk(k, dim=1).indices  # (r, k)
        yield slice(i0, i1), es.codes[idx] == es.codes[i0:i1, None]


def set_recall_at_k(es: EmbeddingSet, ks=(1,)) -> dict[int, float]:
    ks = _check_ks(ks, es.n)
    hits = {k: 0 for k in ks}
    for _, same in _neighbour_blocks(es, max(ks)):
        for k in ks:
            hits[k] += int(same[:, :k].any(dim=1).sum())
    return {k: hits[k] / es.n for k in ks}


def recall_at_k(embeddings, labels, ks=(1,), *, normalize: bool = True) -> dict[int, float]:
    """``{k: share of samples whose k nearest neighbours include one of their class}``."""
    return set_recall_at_k(embedding_set(embeddings, labels, normalize=normalize), ks)


def set_map_at_r(es: EmbeddingSet) -> float:
    """Mean over queries with R = (class size - 1) >= 1 of (1/R) sum_{i<=R} P@i * rel_i."""
    sizes = torch.as_tensor(es.class_sizes, device=es.codes.device)[es.codes]  # (n,)
    r_max = int(sizes.max()) - 1
    total, count = 0.0, 0
    for rows, same in _neighbour_blocks(es, r_max):
        r = (sizes[rows] - 1).unsqueeze(1)  # (b, 1)
        rank = torch.arange(1, r_max + 1, device=same.device).unsqueeze(0)  # (1, r_max)
        rel = same & (rank <= r)
        precision = rel.cumsum(dim=1) / rank
        ap = (precision * rel).sum(dim=1) / r.squeeze(1).clamp(min=1)
        keep = r.squeeze(1) >= 1
        total += float(ap[keep].sum())
        count += int(keep.sum())
    return total / count


def map_at_r(embeddings, labels, *, normalize: bool = True) -> float:
    return set_map_at_r(embedding_set(embeddings, labels, normalize=normalize))


def _check_ks(ks, n: int) -> tuple[int, ...]:
    ks = tuple(int(k) for k in np.atleast_1d(ks))
    if not ks or min(ks) < 1 or max(ks) > n - 1:
        raise TCMError(f"ks must be integers between 1 and n-1 = {n - 1}; got {ks}")
    return ks
