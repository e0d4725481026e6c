"""Class-balanced P x K batches for metric learning, shardable across DDP ranks.

Each batch holds ``classes_per_batch`` (P) distinct classes with ``samples_per_class`` (K)
items each, so every anchor has K-1 positives in the batch. Within a class, items are drawn
without replacement from a shuffled queue (refilled when it runs short); only a class with
fewer than K items is drawn with replacement. Batches depend on ``seed`` and ``set_epoch``.
With ``num_replicas`` > 1 every rank builds the same batch list and keeps every
``num_replicas``-th batch from ``rank``: disjoint shares of equal length.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from torch.utils.data import Sampler

from tcm_core.errors import TCMError


def _positive_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise TCMError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


class ClassBalancedBatchSampler(Sampler[list[int]]):
    """Yields batches (lists of dataset indices) of P classes x K samples.

    ``labels (n,)`` are the dataset's labels (e.g. ``DataSplits.train_labels``). One epoch
    has about ``n / (P * K)`` batches in all (at least one per rank), split over the ranks.
    """

    def __init__(self, labels, classes_per_batch: int, samples_per_class: int, *, seed: int = 0,
                 num_replicas: int = 1, rank: int = 0) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise TCMError(f"labels must be a 1-d integer array; got shape {labels.shape}, dtype {labels.dtype}")
        self.p = _positive_int("classes_per_batch", classes_per_batch, 2)
        self.k = _positive_int("samples_per_class", samples_per_class, 1)
        self.num_replicas = _positive_int("num_replicas", num_replicas, 1)
        self.rank = _positive_int("rank", rank, 0)
        self.seed = _positive_int("seed", seed, 0)
        if self.rank >= self.num_replicas:
            raise TCMError(f"rank must be below num_replicas ({self.num_replicas}); got {self.rank}")
        classes, inverse = np.unique(labels, return_inverse=True)
        if len(classes) < self.p:
            raise TCMError(f"classes_per_batch is {self.p}, but the labels hold only {len(classes)} "
                           f"class(es) with items; lower classes_per_batch or use more classes")
        order = np.argsort(inverse, kind="stable")
        self._members = np.split(order, np.cumsum(np.bincount(inverse))[:-1])  # per class
        per_epoch = len(labels) // (self.p * self.k)
        self._total = max(1, per_epoch // self.num_replicas) * self.num_replicas
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use a different (but reproducible) set of batches for ``epoch``."""
        self.epoch = _positive_int("epoch", epoch, 0)

    def __len__(self) -> int:
        return self._total // self.num_replicas

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        queues = [rng.permutation(m) for m in self._members]
        heads = [0] * len(queues)
        for b in range(self._total):
            chosen = rng.choice(len(queues), size=self.p, replace=False)
            batch = [self._draw(c, queues, heads, rng) for c in chosen]
            if b % self.num_replicas == self.rank:
                yield np.concatenate(batch).tolist()

    def _draw(self, c: int, queues: list[np.ndarray], heads: list[int], rng) -> np.ndarray:
        members = self._members[c]
        if len(members) < self.k:
            return rng.choice(members, size=self.k, replace=True)
        if heads[c] + self.k > len(queues[c]):
            queues[c], heads[c] = rng.permutation(members), 0
        heads[c] += self.k
        return queues[c][heads[c] - self.k:heads[c]]
