"""Reader for Cars-196 (Stanford Cars) with the DML split: classes 1-98 train, 99-196 test.

Two layouts are accepted in the dataset folder: the original Stanford release
(``cars_annos.mat`` + ``car_ims/``) and the Kaggle "stanford-car-dataset-by-classes-folder"
archive that pytorch-metric-learning downloads (``names.csv``, ``anno_train.csv``,
``anno_test.csv``, ``car_data/car_data/{train,test}/<class name>/``). The DML split ignores
the classification train/test flag and splits by class id.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tcm_core.data.benchmarks import split_by_class
from tcm_core.data.image_list import ImageList
from tcm_core.errors import TCMError

LAST_TRAIN_CLASS = 98


def read_cars196(folder: Path) -> tuple[ImageList, ImageList]:
    """Train and test ``ImageList`` of Cars-196 in either accepted layout under ``folder``."""
    if (folder / "cars_annos.mat").is_file():
        items = _read_mat(folder / "cars_annos.mat")
    else:
        items = _read_kaggle(folder)
    return split_by_class(folder, items, last_train=LAST_TRAIN_CLASS)


def _read_mat(path: Path) -> list[tuple[str, int, str]]:
    from scipy.io import loadmat

    try:
        mat = loadmat(path, squeeze_me=True)
        annotations = np.atleast_1d(mat["annotations"])
        names = [str(n) for n in np.atleast_1d(mat["class_names"])]
        paths = [str(p) for p in annotations["relative_im_path"]]
        ids = [int(c) for c in annotations["class"]]
    except Exception as err:  # scipy raises many types for a damaged or foreign .mat
        raise TCMError(f"{path} could not be read as the Stanford Cars annotation file "
                       f"(fields annotations.relative_im_path, annotations.class, class_names): {err}") from None
    if ids and (min(ids) < 1 or max(ids) > len(names)):
        raise TCMError(f"{path} is malformed: class ids must lie in 1..{len(names)} (class_names)")
    return [(p, c, names[c - 1]) for p, c in zip(paths, ids)]


def _read_kaggle(folder: Path) -> list[tuple[str, int, str]]:
    with open(folder / "names.csv", encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    items = []
    for split in ("train", "test"):
        path = folder / f"anno_{split}.csv"
        with open(path, encoding="utf-8", newline="") as f:
            for number, row in enumerate(csv.reader(f), start=1):
                if not row:
                    continue
                try:  # file name, x1, y1, x2, y2, class id
                    class_id = int(row[-1])
                    if not 1 <= class_id <= len(names):
                        raise IndexError(class_id)
                    name = names[class_id - 1]
                except (ValueError, IndexError):
                    raise TCMError(f"{path} line {number} is malformed: expected "
                                   f"'<file>,x1,y1,x2,y2,<class id 1..{len(names)}>', got {row!r}") from None
                rel = f"car_data/car_data/{split}/{name.replace('/', '-')}/{row[0]}"
                items.append((rel, class_id, name))
    return items
