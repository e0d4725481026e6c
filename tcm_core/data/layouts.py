"""Where each benchmark lives on disk: its folder name, marker files and how to get it.

A *layout* is the official file arrangement of one DML benchmark. ``locate`` finds the
dataset folder under a data root (or accepts the dataset folder itself) and otherwise
raises a TCMError that names the exact folder and files it looked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tcm_core.errors import TCMError


@dataclass(frozen=True)
class Layout:
    """One benchmark's on-disk arrangement.

    ``markers`` lists alternative sets of files (relative to the dataset folder); the folder
    is usable when every file of at least one set exists.
    """

    name: str
    folder: str
    markers: tuple[tuple[str, ...], ...]
    description: str
    how_to_get: str


LAYOUTS: dict[str, Layout] = {
    "cub": Layout(
        "cub", "CUB_200_2011", (("images.txt", "image_class_labels.txt", "images"),),
        "CUB-200-2011 birds: classes 1-100 train, 101-200 test",
        "download CUB_200_2011.tgz from https://data.caltech.edu/records/65de6-vp158 and "
        "extract it there",
    ),
    "cars196": Layout(
        "cars196", "cars196",
        (("cars_annos.mat", "car_ims"), ("names.csv", "anno_train.csv", "anno_test.csv", "car_data")),
        "Cars-196: classes 1-98 train, 99-196 test",
        "put the original Stanford files (cars_annos.mat and car_ims/) there, or the Kaggle "
        "'stanford-car-dataset-by-classes-folder' files (names.csv, anno_*.csv, car_data/)",
    ),
    "sop": Layout(
        "sop", "Stanford_Online_Products", (("Ebay_train.txt", "Ebay_test.txt"),),
        "Stanford Online Products: Ebay_train.txt / Ebay_test.txt classes",
        "download Stanford_Online_Products.zip (github.com/rksltnl/Deep-Metric-Learning-CVPR16) "
        "and extract it there",
    ),
    "inat2018": Layout(
        "inat2018", "inat2018",
        (("Inat_dataset_splits/Inaturalist_train_set1.txt",
          "Inat_dataset_splits/Inaturalist_test_set1.txt", "train_val2018"),),
        "iNaturalist-2018 with the Smooth-AP DML split",
        "extract train_val2018.tar.gz (github.com/visipedia/inat_comp/tree/master/2018) and the "
        "Smooth-AP split files Inat_dataset_splits/ (github.com/Andrew-Brown1/Smooth_AP) there",
    ),
}


def _has(folder: Path, files: tuple[str, ...]) -> bool:
    return all((folder / f).exists() for f in files)


def find(root: Path, layout: Layout) -> Path | None:
    """The dataset folder (``root/<folder>`` or ``root`` itself) if complete, else None."""
    for candidate in (root / layout.folder, root):
        if any(_has(candidate, files) for files in layout.markers):
            return candidate
    return None


def locate(root: Path, layout: Layout, extra: str = "") -> Path:
    """Like ``find`` but raise a TCMError that says what was expected and how to get it
    (``extra`` is appended, e.g. why a download failed)."""
    found = find(root, layout)
    if found is not None:
        return found
    folder = root / layout.folder
    if not folder.is_dir():
        problem = f"the folder {folder} does not exist"
    else:
        missing = [f for f in layout.markers[0] if not (folder / f).exists()]
        problem = f"{folder} is missing {', '.join(missing)}"
    options = " or ".join("{" + ", ".join(files) + "}" for files in layout.markers)
    raise TCMError(
        f"{layout.description} not found: {problem}. Expected {folder}/ containing {options}. "
        f"Pass --data-dir pointing at the folder that contains {layout.folder}/, or "
        f"{layout.how_to_get}.{extra}"
    )
