"""The result of loading a dataset: train and test splits plus what samplers and caches need.

``DataSplits`` is what every loader returns (see ``load.load_dataset``). Labels are kept
as arrays next to the datasets so samplers and metrics never have to load an image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch.utils.data import Dataset

KINDS = ("small", "image")


@dataclass(frozen=True, eq=False)
class DataSplits:
    """Train/test splits of one dataset.

    ``train``/``test`` yield ``(image (C, H, W) float tensor, label int)``;
    ``train_labels (n_train,)``/``test_labels (n_test,)`` are int64 and index
    ``train_classes``/``test_classes``. ``kind`` is "small" (1-channel 28x28 or 8x8, for a
    small CNN) or "image" (RGB, for torchvision backbones). ``identity`` is a stable cache key;
    ``note`` is a message to show the user (e.g. a fallback), or None.
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

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind
        assert len(self.train) == len(self.train_labels), "train dataset and labels differ"
        assert len(self.test) == len(self.test_labels), "test dataset and labels differ"
        self.train_labels.setflags(write=False)
        self.test_labels.setflags(write=False)

    @property
    def open_world(self) -> bool:
        """True when test classes are disjoint from train classes (retrieval on unseen classes)."""
        return not set(self.train_classes) & set(self.test_classes)

    def summary(self) -> str:
        """One line for logs and the app: sizes and class counts of both splits."""
        return (
            f"{self.name}: train {len(self.train_labels)} images / "
            f"{len(np.unique(self.train_labels))} classes, test {len(self.test_labels)} images / "
            f"{len(np.unique(self.test_labels))} classes ({self.kind}, {self.in_channels}x"
            f"{self.image_size}x{self.image_size})"
        )
