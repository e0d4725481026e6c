"""Readers for the official files of CUB-200-2011, Stanford Online Products and iNaturalist-2018.

Each returns the (train, test) ``ImageList`` of the standard open-world DML split:
CUB classes 1-100 train / 101-200 test (``images.txt`` + ``image_class_labels.txt``);
SOP ``Ebay_train.txt`` / ``Ebay_test.txt``; iNaturalist-2018 the Smooth-AP split files
``Inat_dataset_splits/Inaturalist_{train,test}_set1.txt`` (the split pytorch-metric-learning
uses). iNaturalist images sit in ``train_val2018/<supercategory>/<category id>/``, so the class
is read from the path instead of parsing the 300 MB annotation JSON. Cars-196 is in ``cars196``.
"""

from __future__ import annotations

from pathlib import Path

from tcm_core.data.image_list import ImageList
from tcm_core.errors import TCMError


def read_rows(path: Path, columns: int, header: bool = False) -> list[list[str]]:
    """Whitespace-separated rows with at least ``columns`` fields; TCMError names a bad line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip() or (header and number == 1):
                continue
            fields = line.split()
            if len(fields) < columns:
                raise TCMError(f"{path} line {number} is malformed: expected {columns} fields, "
                               f"got {line.strip()!r}; the file may be truncated or not the official one")
            rows.append(fields)
    return rows


def _int(value: str, path: Path) -> int:
    try:
        return int(value)
    except ValueError:
        raise TCMError(f"{path} is malformed: expected an integer id, got {value!r}") from None


def split_by_class(folder: Path, items: list[tuple[str, int, str]], last_train: int):
    """``items`` are (relative path, class id, class name); ids <= last_train go to train."""
    names = {cid: name for _, cid, name in items}
    out = []
    for keep in (lambda c: c <= last_train, lambda c: c > last_train):
        chosen = [(rel, cid) for rel, cid, _ in items if keep(cid)]
        out.append(ImageList.from_keys([folder / r for r, _ in chosen], [c for _, c in chosen], names))
    return out[0], out[1]


def read_cub(folder: Path) -> tuple[ImageList, ImageList]:
    """CUB-200-2011 under ``folder`` (= .../CUB_200_2011): classes 1-100 train, 101-200 test."""
    images = {row[0]: row[1] for row in read_rows(folder / "images.txt", 2)}
    labels_file = folder / "image_class_labels.txt"
    items = []
    for image_id, class_id in read_rows(labels_file, 2):
        if image_id not in images:
            raise TCMError(f"{labels_file} names image id {image_id}, which {folder / 'images.txt'} lacks")
        rel = images[image_id]
        items.append(("images/" + rel, _int(class_id, labels_file), rel.split("/")[0]))
    return split_by_class(folder, items, last_train=100)


def read_sop(folder: Path) -> tuple[ImageList, ImageList]:
    """Stanford Online Products under ``folder``: Ebay_train.txt and Ebay_test.txt."""
    splits = []
    for split in ("train", "test"):
        path = folder / f"Ebay_{split}.txt"
        rows = read_rows(path, 4, header=True)  # image_id class_id super_class_id path
        keys = [_int(r[1], path) for r in rows]
        names = {k: f"{r[3].split('/')[0].removesuffix('_final')}/{k}" for k, r in zip(keys, rows)}
        splits.append(ImageList.from_keys([folder / r[3] for r in rows], keys, names))
    return splits[0], splits[1]


def read_inat2018(folder: Path) -> tuple[ImageList, ImageList]:
    """iNaturalist-2018 under ``folder`` with the Smooth-AP split files."""
    splits = []
    for split in ("train", "test"):
        path = folder / "Inat_dataset_splits" / f"Inaturalist_{split}_set1.txt"
        rels = [row[0] for row in read_rows(path, 1)]
        keys, names = [], {}
        for rel in rels:  # train_val2018/<supercategory>/<category id>/<image>.jpg
            parts = rel.split("/")
            if len(parts) < 4:
                raise TCMError(f"{path} is malformed: expected paths like "
                               f"train_val2018/<supercategory>/<category id>/<image>.jpg, got {rel!r}")
            key = _int(parts[-2], path)
            keys.append(key)
            names[key] = f"{parts[-3]}/{parts[-2]}"
        splits.append(ImageList.from_keys([folder / r for r in rels], keys, names))
    return splits[0], splits[1]
