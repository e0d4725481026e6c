"""The one list of datasets TCM Explorer knows (like the loss and backbone registries).

Each entry says what the dataset is, whether it is a small in-memory toy (1-channel, closed-set,
a small CNN) or a photo benchmark (RGB, open-world, a torchvision backbone), and, for the
torchvision toys, the folder torchvision stores it in. The CLI's choices, the app's selectbox,
the data-root scan and the loaders all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from tcm_core.data import layouts
from tcm_core.errors import TCMError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    kind: str  # "small" (1-channel toys, in memory) or "image" (RGB photos)
    torchvision_folder: str | None = None  # MNIST/, FashionMNIST/ under the data root


DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo("mnist", "MNIST handwritten digits, 60,000 train / 10,000 test, 28x28 grey, closed-set toy", "small", "MNIST"),
    DatasetInfo("fashion-mnist", "Fashion-MNIST clothing, 60,000 train / 10,000 test, 28x28 grey, closed-set toy", "small",
                "FashionMNIST"),
    DatasetInfo("digits", "scikit-learn's bundled 8x8 digits, 1,797 images, closed-set toy (always available)", "small"),
    DatasetInfo("folder", "your own image folders root/<class>/*.jpg, open-world class split", "image"),
    *(DatasetInfo(name, layout.description, "image") for name, layout in layouts.LAYOUTS.items()),
)}
SMALL = tuple(name for name, info in DATASETS.items() if info.kind == "small")
ALIASES = {"fashionmnist": "fashion-mnist", "cars": "cars196", "cub200": "cub"}


def normalize_name(name: str) -> str:
    """Canonical dataset name (case and '_' vs '-' ignored); TCMError lists the valid names."""
    key = str(name).strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        raise TCMError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return key


def dataset_kind(name: str) -> str:
    """"small" or "image" for a dataset name (any spelling ``normalize_name`` accepts)."""
    return DATASETS[normalize_name(name)].kind
