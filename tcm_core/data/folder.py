"""Plain image folders ``root/<class>/*.jpg`` split open-world: train and test classes disjoint.

Classes are the sub-folders of ``root`` in sorted name order; the first
``train_class_fraction`` of them (default half) train, the rest test, as in the DML
benchmarks. ``image_list.image_splits`` then carves the validation classes (20%, by name hash;
see ``validation``) out of the training classes, so e.g. 100 folders give 40 train, 10 val and
50 test classes; with fewer than 4 training classes the validation split is empty.
Sub-folders without images are skipped with a warning.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from tcm_core.data.image_list import ImageList
from tcm_core.errors import TCMError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
LAYOUT_HINT = "a folder of class folders, e.g. root/<class name>/*.jpg"


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_class_folders(root: Path, train_class_fraction: float = 0.5) -> tuple[ImageList, ImageList]:
    """Train and test ``ImageList`` of the class folders under ``root`` (disjoint classes)."""
    if not 0.0 < train_class_fraction < 1.0:
        raise TCMError(f"train_class_fraction must be strictly between 0 and 1; got {train_class_fraction!r}")
    if not root.is_dir():
        raise TCMError(f"image folder {root} does not exist; pass --data-dir pointing at {LAYOUT_HINT}")
    classes, empty = [], []
    for d in _class_dirs(root):
        files = sorted(f for f in os.listdir(d) if _is_image(f))
        if files:
            classes.append((d.name, [str(d / f) for f in files]))
        else:
            empty.append(d.name)
    if empty:
        warnings.warn(f"skipping {len(empty)} class folder(s) without images under {root}: "
                      f"{', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}", stacklevel=3)
    if len(classes) < 4:
        raise TCMError(
            f"{root} holds {len(classes)} class folder(s) with images ({', '.join(IMAGE_EXTENSIONS)}); "
            f"at least 4 are needed (2 train, 2 test). Expected {LAYOUT_HINT}."
        )
    n_train = min(max(round(len(classes) * train_class_fraction), 2), len(classes) - 2)
    return _image_list(classes[:n_train]), _image_list(classes[n_train:])


def _image_list(classes: list[tuple[str, list[str]]]) -> ImageList:
    paths = [p for _, files in classes for p in files]
    keys = [i for i, (_, files) in enumerate(classes) for _ in files]
    return ImageList.from_keys(paths, keys, {i: name for i, (name, _) in enumerate(classes)})


def count_class_folders(root: Path, probe: int = 3) -> int:
    """Cheap guess at how many class folders ``root`` holds: 0 unless its first ``probe``
    sub-folders each contain an image file (found without listing whole folders)."""
    try:
        dirs = _class_dirs(root)
    except OSError:
        return 0
    if len(dirs) < 2:
        return 0
    for d in dirs[:probe]:
        with os.scandir(d) as entries:
            if not any(e.is_file() and _is_image(e.name) for e in entries):
                return 0
    return len(dirs)


def find_image_folders(root: Path, depth: int = 2) -> list[tuple[Path, int]]:
    """``(folder, number of classes)`` for each folder of class folders within ``depth`` levels."""
    found, frontier = [], [root]
    for level in range(depth + 1):
        next_frontier = []
        for folder in frontier:
            n = count_class_folders(folder)
            if n:
                found.append((folder, n))
            elif level < depth and folder.is_dir():
                try:
                    next_frontier += _class_dirs(folder)
                except OSError:  # unreadable folders are simply not offered
                    pass
        frontier = next_frontier
    return found
