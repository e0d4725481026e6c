"""Deterministic subsetting of a labelled split: fewer classes, fewer items per class, fewer items.

Labels are ``0..C-1`` in class order, so ``max_classes`` keeps the first classes. The
per-class cap and the total cap draw items with a generator seeded by ``seed`` (and the split
name), so the same options always give the same items; the total cap is stratified, keeping
each class's share of the split. Selected indices are returned in their original order.

The validation split is drawn with the fixed ``VAL_SEED`` instead of ``seed``: runs that differ
only in their (training) seed are validated on exactly the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcm_core.errors import TCMError

SPLITS = ("train", "val", "test")
_SPLIT_SALT = {"train": 0, "test": 1, "val": 2}
VAL_SEED = 0  # validation subsets never depend on SubsetSpec.seed (= the training seed)


def _check_cap(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
        raise TCMError(f"{name} must be a positive integer or None (no limit); got {value!r}")


@dataclass(frozen=True)
class SubsetSpec:
    """How much of each split to keep; ``None`` means no limit.

    ``max_classes`` and ``max_per_class`` apply to every split, ``max_{train,val,test}_samples``
    to their own split. ``seed`` draws the train and test subsets; validation uses ``VAL_SEED``.
    """

    max_classes: int | None = None
    max_per_class: int | None = None
    max_train_samples: int | None = None
    max_test_samples: int | None = None
    seed: int = 0
    max_val_samples: int | None = None  # last, so positional construction keeps its meaning

    def __post_init__(self) -> None:
        for name in ("max_classes", "max_per_class", "max_train_samples", "max_test_samples", "max_val_samples"):
            _check_cap(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise TCMError(f"seed must be a non-negative integer; got {self.seed!r}")

    def describe(self) -> str:
        """A stable text of what this spec keeps (a cache key). The seed is part of it only when
        it draws something: without random caps every seed keeps the same items, so runs that
        differ only in their seed share cached backbone features."""
        random = (self.max_per_class, self.max_train_samples, self.max_test_samples)
        seed = self.seed if any(v is not None for v in random) else "any"
        return (
            f"max_classes={self.max_classes},max_per_class={self.max_per_class},"
            f"max_train={self.max_train_samples},max_val={self.max_val_samples},"
            f"max_test={self.max_test_samples},seed={seed}"
        )

    def select(self, labels: np.ndarray, split: str) -> np.ndarray:
        """Indices (sorted, int64) of the items of ``labels`` that this spec keeps for ``split``."""
        if split not in _SPLIT_SALT:
            raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
        seed = VAL_SEED if split == "val" else self.seed
        rng = np.random.default_rng([seed, _SPLIT_SALT[split]])
        idx = np.arange(len(labels), dtype=np.int64)
        if self.max_classes is not None:
            idx = idx[labels < self.max_classes]
        if self.max_per_class is not None:
            ranks, _ = random_ranks(labels[idx], rng)
            idx = idx[ranks < self.max_per_class]
        cap = {"train": self.max_train_samples, "val": self.max_val_samples, "test": self.max_test_samples}[split]
        if cap is not None and cap < len(idx):
            idx = idx[stratified_sample(labels[idx], cap, rng)]
        return idx

    def num_classes(self, num_classes: int) -> int:
        """How many classes remain of ``num_classes`` after ``max_classes``."""
        return num_classes if self.max_classes is None else min(num_classes, self.max_classes)


def stratified_sample(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices (int64) of ``size`` items of ``labels`` drawn so each class keeps its share.

    Items are ranked by their random position within their own class relative to the class size,
    so the first ``size`` take every class in proportion (ties broken at random).
    """
    n = len(labels)
    if size >= n:
        return np.arange(n, dtype=np.int64)
    ranks, counts = random_ranks(labels, rng)
    share = (ranks + 0.5) / counts  # position within own class, in (0, 1)
    perm = rng.permutation(n)  # random tie-breaks between classes
    return np.sort(perm[np.argsort(share[perm], kind="stable")[:size]]).astype(np.int64)


def random_ranks(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each item's rank within its class under a random order, and its class size.

    Returns ``(ranks (n,), counts (n,))``; keeping ``ranks < k`` draws k items per class.
    """
    n = len(labels)
    perm = rng.permutation(n)
    order = perm[np.argsort(labels[perm], kind="stable")]  # grouped by class, random within
    sorted_labels = labels[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_labels)) + 1]
    sizes = np.diff(np.r_[starts, n])
    group = np.repeat(np.arange(len(starts)), sizes)
    ranks = np.empty(n, dtype=np.int64)
    counts = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n) - starts[group]
    counts[order] = sizes[group]
    return ranks, counts
