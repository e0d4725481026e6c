"""Retrieval accuracy: Recall@k and MAP@R (METHOD.md, "Accuracy").

Every sample is a query against all others (cosine similarity, self excluded); rows are
processed in blocks so memory stays bounded. Inside ``sharded.across_ranks()`` (``torchrun``)
each rank takes its share of the query blocks and the per-block sums are combined, so every
rank ends with exactly the single-process numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tcm_core.errors import TCMError
from tcm_core.metrics.inputs import EmbeddingSet, embedding_set
from tcm_core.metrics.pairs import BLOCK_BYTES
from tcm_core.metrics.sharded import owned, sum_over_ranks


def _query_rows(n: int) -> int:
    """Queries per block: ``(r, n)`` similarities and their top-k within ``BLOCK_BYTES``."""
    return int(max(1, min(n, BLOCK_BYTES // (16 * n))))


def _neighbor_blocks(es: EmbeddingSet, k: int):
    """Yield ``(rows, same (r, k) bool)``: whether each query's j-th nearest neighbour shares its
    class; ``rows`` is the block's slice of queries (block ``rows.start // _query_rows(n)``)."""
    n = es.n
    rows = _query_rows(n)
    for i0 in owned(range(0, n, rows)):  # this rank's query blocks (all of them in one process)
        i1 = min(n, i0 + rows)
        sims = es.embeddings[i0:i1] @ es.embeddings.T  # (r, n)
        sims[torch.arange(i1 - i0), torch.arange(i0, i1)] = -float("inf")
        idx = sims.topk(k, dim=1).indices  # (r, k)
        yield slice(i0, i1), es.codes[idx] == es.codes[i0:i1, None]


def recall_at_k_from_set(es: EmbeddingSet, ks=(1,)) -> dict[int, float]:
    ks = _check_ks(ks, es.n)
    hits = np.zeros(len(ks), dtype=np.int64)
    for _, same in _neighbor_blocks(es, max(ks)):
        hits += [int(same[:, :k].any(dim=1).sum()) for k in ks]
    hits = sum_over_ranks(hits)
    return {k: int(h) / es.n for k, h in zip(ks, hits)}


def recall_at_k(embeddings, labels, ks=(1,), *, normalize: bool = True) -> dict[int, float]:
    """``{k: share of samples whose k nearest neighbours include one of their class}``."""
    return recall_at_k_from_set(embedding_set(embeddings, labels, normalize=normalize), ks)


@dataclass(frozen=True)
class ClassHits:
    """Per class: ``classes (C,)``, ``hits (C,)`` queries whose nearest neighbor shares their
    class, ``sizes (C,)`` queries. R@1 = hits.sum() / sizes.sum(); what a bootstrap over
    classes resamples."""

    classes: np.ndarray
    hits: np.ndarray
    sizes: np.ndarray

    @property
    def recall_at_1(self) -> float:
        return float(self.hits.sum() / self.sizes.sum())


def class_hits_from_set(es: EmbeddingSet) -> ClassHits:
    hit = np.zeros(es.n, dtype=bool)
    for rows, same in _neighbor_blocks(es, 1):
        hit[rows] = same[:, 0].cpu().numpy()
    codes = es.codes.cpu().numpy()
    hits = sum_over_ranks(np.bincount(codes[hit], minlength=len(es.classes)))
    return ClassHits(es.classes, hits.astype(np.float64), np.asarray(es.class_sizes, dtype=np.float64))


def class_hits(embeddings, labels, *, normalize: bool = True) -> ClassHits:
    """R@1's hits per class (every sample a query against all others)."""
    return class_hits_from_set(embedding_set(embeddings, labels, normalize=normalize))


def map_at_r_from_set(es: EmbeddingSet) -> float:
    """Mean over queries with R = (class size - 1) >= 1 of (1/R) sum_{i<=R} P@i * rel_i."""
    sizes = torch.as_tensor(es.class_sizes, device=es.codes.device)[es.codes]  # (n,)
    r_max = int(sizes.max()) - 1
    n_rows = _query_rows(es.n)
    block_ap = np.zeros(-(-es.n // n_rows))  # each query block's sum of AP, in block order
    count = 0
    for rows, same in _neighbor_blocks(es, r_max):
        r = (sizes[rows] - 1).unsqueeze(1)  # (b, 1)
        rank = torch.arange(1, r_max + 1, device=same.device).unsqueeze(0)  # (1, r_max)
        rel = same & (rank <= r)
        precision = rel.cumsum(dim=1) / rank
        ap = (precision * rel).sum(dim=1) / r.squeeze(1).clamp(min=1)
        keep = r.squeeze(1) >= 1
        block_ap[rows.start // n_rows] = float(ap[keep].sum())
        count += int(keep.sum())
    # one rank holds each block's sum (the others 0.0, so the all-reduce adds it exactly), then
    # the blocks are added in order: the single-process sum, bit for bit
    block_ap = sum_over_ranks(block_ap)
    total = 0.0
    for value in block_ap:
        total += float(value)
    return total / int(sum_over_ranks(np.array([count]))[0])


def map_at_r(embeddings, labels, *, normalize: bool = True) -> float:
    return map_at_r_from_set(embedding_set(embeddings, labels, normalize=normalize))


def _check_ks(ks, n: int) -> tuple[int, ...]:
    ks = tuple(int(k) for k in np.atleast_1d(ks))
    if not ks or min(ks) < 1 or max(ks) > n - 1:
        raise TCMError(f"ks must be integers between 1 and n-1 = {n - 1}; got {ks}")
    return ks
