"""Natural-image splits as lists of files: the shared back end of the folder and benchmark loaders.

Each reader (``folder``, ``benchmarks``, ``cars196``) turns its on-disk layout into two
``ImageList`` objects (train and test); ``image_splits`` carves the validation classes out of the
training list (``validation.carve_val_classes``: 20% of the training classes, by name hash),
subsets the three lists, attaches transforms (validation gets the test transform) and returns a
``DataSplits``. Images are opened with PIL and converted to RGB one item at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from tcm_core.data.splits import DataSplits
from tcm_core.data.subset import SubsetSpec
from tcm_core.data.validation import carve_val_classes
from tcm_core.errors import TCMError


@dataclass(frozen=True, eq=False)
class ImageList:
    """Files of one split: ``paths (n,)``, ``labels (n,)`` indexing ``classes``."""

    paths: tuple[str, ...]
    labels: np.ndarray
    classes: tuple[str, ...]

    @classmethod
    def from_keys(
        cls, paths: Sequence[str], keys: Sequence[Hashable], names: dict | None = None
    ) -> "ImageList":
        """Label items by the rank of their class key among the sorted distinct keys.

        ``names`` maps a key to its class name (default ``str(key)``).
        """
        distinct = sorted(set(keys))
        label_of = {key: i for i, key in enumerate(distinct)}
        labels = np.array([label_of[k] for k in keys], dtype=np.int64)
        classes = tuple((names or {}).get(k, str(k)) for k in distinct)
        return cls(tuple(str(p) for p in paths), labels, classes)

    def take(self, indices: np.ndarray, num_classes: int) -> "ImageList":
        return ImageList(tuple(self.paths[i] for i in indices), self.labels[indices],
                         self.classes[:num_classes])

    def split_classes(self, names: frozenset[str] | set[str]) -> tuple["ImageList", "ImageList"]:
        """``(items of classes not in names, items of classes in names)``, each relabelled
        ``0..C-1`` with its classes in their original order."""
        inside = np.array([c in names for c in self.classes], dtype=bool)
        return self._keep_classes(~inside), self._keep_classes(inside)

    def _keep_classes(self, keep: np.ndarray) -> "ImageList":
        new_label = np.cumsum(keep) - 1  # old label -> new label, for kept classes
        idx = np.flatnonzero(keep[self.labels])
        return ImageList(tuple(self.paths[i] for i in idx), new_label[self.labels[idx]].astype(np.int64),
                         tuple(c for c, k in zip(self.classes, keep) if k))


class ImageListDataset(Dataset):
    """Yields ``(transform(RGB PIL image), label)`` for each file."""

    def __init__(self, items: ImageList, transform: Callable[[Any], Any] | None) -> None:
        self.items = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items.paths)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        with Image.open(self.items.paths[i]) as im:
            image = im.convert("RGB")
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.items.labels[i])


def _check(items: ImageList, name: str, split: str, where: Path) -> None:
    if len(items.paths) == 0:
        raise TCMError(f"{name}: the {split} split under {where} has no images; check the dataset files")
    if not Path(items.paths[0]).is_file():
        raise TCMError(
            f"{name}: the {split} split lists {items.paths[0]}, but that file does not exist; "
            f"check that the images under {where} were fully extracted"
        )


def image_splits(
    name: str, train: ImageList, test: ImageList, *, where: Path, spec: SubsetSpec,
    image_size: int, train_transform: Callable, test_transform: Callable, identity: str,
) -> DataSplits:
    """Carve validation classes from ``train``, subset the three lists with ``spec`` and wrap
    them as an "image" ``DataSplits`` (``identity`` should include ``validation.CLASS_RULE``)."""
    for split, items in (("train", train), ("test", test)):
        _check(items, name, split, where)
    train, val = train.split_classes(carve_val_classes(train.classes))
    parts = {}
    for split, items in (("train", train), ("val", val), ("test", test)):
        idx = spec.select(items.labels, split)
        parts[split] = items.take(idx, spec.num_classes(len(items.classes)))
    return DataSplits(
        name=name, kind="image",
        train=ImageListDataset(parts["train"], train_transform),
        test=ImageListDataset(parts["test"], test_transform),
        train_labels=parts["train"].labels, test_labels=parts["test"].labels,
        train_classes=parts["train"].classes, test_classes=parts["test"].classes,
        in_channels=3, image_size=image_size, identity=identity,
        val=ImageListDataset(parts["val"], test_transform),  # no augmentation
        val_labels=parts["val"].labels, val_classes=parts["val"].classes,
    )
