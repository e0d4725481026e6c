"""Image transforms for the natural-image datasets, each with a short description.

The description is part of ``DataSplits.identity`` so that caches keyed on it change when
the preprocessing changes. Defaults follow the usual DML recipe for ImageNet backbones.
"""

from __future__ import annotations

from typing import Any, Callable

from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class NamedTransform:
    """A transform callable that carries a short, stable ``description``."""

    def __init__(self, transform: Callable[[Any], Any], description: str) -> None:
        self.transform = transform
        self.description = description

    def __call__(self, x: Any) -> Any:
        return self.transform(x)

    def __repr__(self) -> str:
        return f"NamedTransform({self.description})"


def default_train_transform(image_size: int = 224) -> NamedTransform:
    """RandomResizedCrop(image_size) + horizontal flip + ImageNet normalization."""
    return NamedTransform(
        T.Compose([
            T.RandomResizedCrop(image_size),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]),
        f"RandomResizedCrop({image_size})+HFlip+ImageNetNorm",
    )


def default_test_transform(image_size: int = 224) -> NamedTransform:
    """Resize(image_size * 256/224) + CenterCrop(image_size) + ImageNet normalization."""
    resize = int(image_size * 256 / 224)
    return NamedTransform(
        T.Compose([
            T.Resize(resize),
            T.CenterCrop(image_size),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]),
        f"Resize({resize})+CenterCrop({image_size})+ImageNetNorm",
    )


def describe_transform(transform: Callable[[Any], Any] | None) -> str:
    """Short text for ``transform``: its ``description`` if it has one, else its repr on one line."""
    if transform is None:
        return "none"
    description = getattr(transform, "description", None)
    return description if isinstance(description, str) else " ".join(repr(transform).split())
