"""Natural-image splits as lists of files: the shared back end of the folder and benchmark loaders.

Each reader (``folder``, ``benchmarks``, ``cars196``) turns its on-disk layout into two
``ImageList`` objects; ``image_splits`` subsets them, attaches transforms and returns a
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
    """Subset both lists with ``spec`` and wrap them as an "image" ``DataSplits``."""
    parts = {}
    for split, items in (("train", train), ("test", test)):
        _check(items, name, split, where)
        idx = spec.select(items.labels, split)
        parts[split] = items.take(idx, spec.num_classes(len(items.classes)))
    return DataSplits(
        name=name, kind="image",
        train=ImageListDataset(parts["train"], train_transform),
        test=ImageListDataset(parts["test"], test_transform),
        train_labels=parts["train"].labels, test_labels=parts["test"].labels,
        train_classes=parts["train"].classes, test_classes=parts["test"].classes,
        in_channels=3, image_size=image_size, identity=identity,
    )
