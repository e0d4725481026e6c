"""Small 1-channel digit datasets (MNIST, Fashion-MNIST, scikit-learn's 8x8 digits) held in memory.

The uint8 images are read once, normalized to float32 ``(n, 1, H, W)`` tensors and served
from memory, so a small CNN trains fast on CPU. These are closed-set toys: all classes appear
in train and test. When MNIST or Fashion-MNIST is absent and cannot be downloaded, the bundled
8x8 digits are used instead and ``DataSplits.note`` says so (plus a ``DatasetFallbackWarning``).

Validation: since every class is in train and test, class-disjoint validation makes no sense
here. Instead 10% of the full official training split, at most 2,000 images (MNIST and
Fashion-MNIST: 2,000 of 60,000; digits: 126 of 1,257), stratified by class, is held out for
validation (``validation.holdout_indices``) and removed from training. It is drawn with a fixed
seed, independent of the training seed, and before any subsetting (``max_train_samples`` etc.
then subset what is left of the training split), so it is the same images in every run.
``max_classes``/``max_per_class``/``max_val_samples`` subset it with a fixed seed too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import numpy as np
import torch
from torch.utils.data import Dataset

from tcm_core.data.download import reachable, socket_timeout
from tcm_core.data.splits import DataSplits
from tcm_core.data.subset import SubsetSpec
from tcm_core.data.transforms import describe_transform
from tcm_core.data.validation import HOLDOUT_RULE, holdout_indices


class DatasetFallbackWarning(UserWarning):
    """A requested dataset was unavailable and a substitute was loaded."""


@dataclass(frozen=True, eq=False)
class _Arrays:
    x_train: np.ndarray  # (n, H, W) raw pixel values
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    scale: float  # raw value of a white pixel
    mean: float  # of x / scale
    std: float
    source: str


class TensorImageDataset(Dataset):
    """In-memory ``images (n, C, H, W)`` float tensor; yields ``(image, label int)``."""

    def __init__(self, images: torch.Tensor, labels: np.ndarray, transform: Callable | None = None):
        self.images = images
        self.labels = torch.from_numpy(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        image = self.images[i]
        return (image if self.transform is None else self.transform(image)), int(self.labels[i])


def _digits() -> _Arrays:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        bunch.images, bunch.target, test_size=0.3, stratify=bunch.target, random_state=0
    )
    classes = tuple(str(c) for c in bunch.target_names)
    return _Arrays(x_tr, y_tr, x_te, y_te, classes, 16.0, 0.3053, 0.3760, "sklearn-digits-8x8")


_TORCHVISION = {  # name -> (class name, folder under root, mean, std, title)
    "mnist": ("MNIST", "MNIST", 0.1307, 0.3081, "MNIST"),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST", 0.2860, 0.3530, "Fashion-MNIST"),
}


def _torchvision(name: str, root: Path, download: bool) -> _Arrays:
    """Read ``name`` with torchvision, downloading when allowed and online; raises on failure."""
    import torchvision.datasets as tvd

    cls_name, _, mean, std, _ = _TORCHVISION[name]
    cls = getattr(tvd, cls_name)
    with socket_timeout():
        try:
            train = cls(str(root), train=True, download=False)
        except RuntimeError:  # torchvision's "Dataset not found"
            host = urlparse(cls.mirrors[0]).hostname
            if not download:
                raise FileNotFoundError("files missing and download=False") from None
            if not reachable(cls.mirrors[0]):
                raise FileNotFoundError(f"files missing and {host} cannot be reached (offline?)") from None
            train = cls(str(root), train=True, download=True)
        test = cls(str(root), train=False, download=False)
    return _Arrays(train.data.numpy(), train.targets.numpy(), test.data.numpy(),
                   test.targets.numpy(), tuple(cls.classes), 255.0, mean, std, name)


def _load_arrays(name: str, root: Path, download: bool) -> tuple[_Arrays, str | None]:
    if name == "digits":
        return _digits(), None
    _, folder, _, _, title = _TORCHVISION[name]
    try:
        return _torchvision(name, root, download), None
    except Exception as err:  # missing, undownloadable or unreadable files all fall back
        reason = " ".join(str(err).split()) or type(err).__name__
    note = (
        f"{title} was not found at {root / folder / 'raw'} ({reason}); scikit-learn's 8x8 digits "
        f"are used instead. Put the {title} files there (or allow downloading) to use {title}."
    )
    warnings.warn(note, DatasetFallbackWarning, stacklevel=4)  # at load_dataset's caller
    return _digits(), note


def _tensors(x: np.ndarray, arrays: _Arrays) -> torch.Tensor:
    images = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32, copy=True)  # (n, H, W)
    return images.div_(arrays.scale).sub_(arrays.mean).div_(arrays.std).unsqueeze(1)  # (n, 1, H, W)


def load_small(
    name: str, root: Path, spec: SubsetSpec, *, download: bool,
    train_transform: Callable | None = None, test_transform: Callable | None = None,
) -> DataSplits:
    """Load MNIST, Fashion-MNIST or digits as a "small" ``DataSplits`` (see module docstring)."""
    arrays, note = _load_arrays(name, root, download)
    num_classes = spec.num_classes(len(arrays.classes))
    y_train = np.asarray(arrays.y_train, dtype=np.int64)
    held_out = np.zeros(len(y_train), dtype=bool)
    held_out[holdout_indices(y_train)] = True  # before any subsetting, with a fixed seed
    parts = {}
    for split, x, y in (("train", arrays.x_train[~held_out], y_train[~held_out]),
                        ("val", arrays.x_train[held_out], y_train[held_out]),
                        ("test", arrays.x_test, np.asarray(arrays.y_test, dtype=np.int64))):
        idx = spec.select(y, split)
        parts[split] = (_tensors(x[idx], arrays), y[idx].copy())
    where = "sklearn" if arrays.source.startswith("sklearn") else str(root)
    identity = (
        f"{name}|source={arrays.source}|root={where}|{HOLDOUT_RULE}|{spec.describe()}|"
        f"norm=({arrays.mean},{arrays.std})|train_tf={describe_transform(train_transform)}|"
        f"test_tf={describe_transform(test_transform)}"
    )
    return DataSplits(
        name=name, kind="small",
        train=TensorImageDataset(*parts["train"], train_transform),
        test=TensorImageDataset(*parts["test"], test_transform),
        train_labels=parts["train"][1], test_labels=parts["test"][1],
        train_classes=arrays.classes[:num_classes], test_classes=arrays.classes[:num_classes],
        in_channels=1, image_size=int(arrays.x_train.shape[-1]), identity=identity, note=note,
        val=TensorImageDataset(*parts["val"], test_transform),  # no augmentation
        val_labels=parts["val"][1], val_classes=arrays.classes[:num_classes],
    )

