"""The result of loading a dataset: train, validation and test splits plus what samplers and caches need.

``DataSplits`` is what every loader returns (see ``load.load_dataset``). Labels are kept
as arrays next to the datasets so samplers and metrics never have to load an image.

The validation split is for choosing things (margins, thresholds, epochs) without looking at
the test split. Open-world datasets validate on classes carved from the training classes
(``validation.carve_val_classes``), so train, validation and test classes are pairwise disjoint; the
closed-set toys validate on held-out training images of the same classes (``small``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch.utils.data import Dataset

KINDS = ("small", "image")


class EmptyDataset(Dataset):
    """A dataset with no items: the validation split of a ``DataSplits`` built without one."""

    def __len__(self) -> int:
        return 0

    def __getitem__(self, i: int) -> Any:
        raise IndexError(f"index {i} is out of range: the dataset is empty")


def _no_labels() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class DataSplits:
    """Train/validation/test splits of one dataset.

    ``train``/``val``/``test`` yield ``(image (C, H, W) float tensor, label int)``;
    ``train_labels (n_train,)``/``val_labels (n_val,)``/``test_labels (n_test,)`` are int64 and
    index ``train_classes``/``val_classes``/``test_classes``. ``kind`` is "small" (1-channel
    28x28 or 8x8, for a small CNN) or "image" (RGB, for torchvision backbones). ``identity`` is a
    stable cache key; ``note`` is a message to show the user (e.g. a fallback), or None.

    Every loader fills the validation split; it may be empty (``has_val`` is False) when an
    open-world dataset has too few training classes to carve one, or when a ``DataSplits`` is
    built by hand without it (the ``val*`` fields are last and defaulted for that reason).
    Validation items always use the test transform (no augmentation).
    """

    name: str
    kind: str
    train: Dataset
    test: Dataset
    train_labels: np.ndarray
    test_labels: np.ndarray
    train_classes: tuple[str, ...]
    test_classes: tuple[str, ...]
    in_channels: int
    image_size: int
    identity: str
    note: str | None = None
    val: Dataset = field(default_factory=EmptyDataset)
    val_labels: np.ndarray = field(default_factory=_no_labels)
    val_classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind
        assert len(self.train) == len(self.train_labels), "train dataset and labels differ"
        assert len(self.val) == len(self.val_labels), "val dataset and labels differ"
        assert len(self.test) == len(self.test_labels), "test dataset and labels differ"
        if len(self.val_labels):
            assert 0 <= int(np.min(self.val_labels)) and int(np.max(self.val_labels)) < len(self.val_classes), \
                "val labels must index val_classes"
        self.train_labels.setflags(write=False)
        self.val_labels.setflags(write=False)
        self.test_labels.setflags(write=False)

    @property
    def open_world(self) -> bool:
        """True when test classes are disjoint from train classes (retrieval on unseen classes)."""
        return not set(self.train_classes) & set(self.test_classes)

    @property
    def has_val(self) -> bool:
        """True when the validation split holds at least one image."""
        return len(self.val_labels) > 0

    def describe_val(self) -> str:
        """What the validation split is: unseen classes, held-out training images, or none."""
        if not self.has_val:
            return "none"
        if set(self.val_classes) & set(self.train_classes):
            return "held-out training images"
        return "unseen classes"

    def summary(self) -> str:
        """One line for logs and the app: sizes and class counts of the three splits."""
        def part(split: str, labels: np.ndarray) -> str:
            return f"{split} {len(labels)} images / {len(np.unique(labels))} classes"

        val = f"{part('val', self.val_labels)} ({self.describe_val()})" if self.has_val else "no val split"
        return (
            f"{self.name}: {part('train', self.train_labels)}, {val}, {part('test', self.test_labels)} "
            f"({self.kind}, {self.in_channels}x{self.image_size}x{self.image_size})"
        )
