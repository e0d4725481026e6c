"""The single entry point ``load_dataset``: dataset name -> ``DataSplits``.

Names: ``mnist``, ``fashion-mnist``, ``digits`` (small, closed-set, in memory; see ``small``),
``folder`` (any folder of class folders; see ``folder``) and the DML benchmarks ``cub``,
``cars196``, ``sop``, ``inat2018`` (official layouts; see ``layouts``, ``benchmarks``,
``cars196``). Image datasets are open-world: test classes are unseen during training.

Every dataset also gets a validation split (see ``validation``): for the image datasets 20% of
the training classes (chosen by a hash of their names, so train/val/test classes are disjoint),
for the toys 10% (at most 2,000) of the training images, held out with a fixed seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from tcm_core.data import layouts
from tcm_core.data.benchmarks import read_cub, read_inat2018, read_sop
from tcm_core.data.cars196 import read_cars196
from tcm_core.data.download import try_download
from tcm_core.data.folder import read_class_folders
from tcm_core.data.image_list import ImageList, image_splits
from tcm_core.data.registry import SMALL, normalize_name
from tcm_core.data.roots import resolve_data_dir
from tcm_core.data.small import load_small
from tcm_core.data.splits import DataSplits
from tcm_core.data.subset import SubsetSpec
from tcm_core.data.transforms import default_test_transform, default_train_transform, describe_transform
from tcm_core.data.validation import CLASS_RULE
from tcm_core.errors import TCMError

_READERS: dict[str, Callable[[Path], tuple[ImageList, ImageList]]] = {
    "cub": read_cub, "cars196": read_cars196, "sop": read_sop, "inat2018": read_inat2018,
}


def load_dataset(
    name: str, data_dir: str | Path | None = None, *, max_classes: int | None = None,
    max_per_class: int | None = None, max_train_samples: int | None = None,
    max_test_samples: int | None = None, seed: int = 0, image_size: int = 224,
    download: bool = True, train_transform: Callable[[Any], Any] | None = None,
    test_transform: Callable[[Any], Any] | None = None, train_class_fraction: float | None = None,
    max_val_samples: int | None = None,
) -> DataSplits:
    """Load dataset ``name`` from ``data_dir`` (see ``roots.resolve_data_dir``) as ``DataSplits``.

    ``data_dir`` is the root that contains the dataset folder (``MNIST/``, ``CUB_200_2011/``,
    ...), except for ``folder``, where it is the folder of class folders itself. Subset options
    are applied per split and are deterministic given ``seed``; the validation split (classes
    carved from the training classes, or held-out training images for the toys; see
    ``validation``) never depends on ``seed``, and ``max_val_samples`` caps it (stratified,
    fixed seed). ``max_classes``/``max_per_class`` apply to it too. Validation items get the
    test transform. ``image_size`` and the default
    transforms apply to RGB datasets; small datasets keep their native size and are only
    normalized (custom transforms then receive the normalized ``(1, H, W)`` tensor).
    ``train_class_fraction`` (default 0.5) is the share of classes that train (validation
    classes are then carved from those), for ``folder`` only.
    """
    key = normalize_name(name)
    spec = SubsetSpec(max_classes, max_per_class, max_train_samples, max_test_samples, seed,
                      max_val_samples=max_val_samples)
    if train_class_fraction is not None and key != "folder":
        raise TCMError(f"train_class_fraction applies to the 'folder' dataset only, not {key!r}; "
                       "leave it unset")
    root = resolve_data_dir(data_dir)
    if key in SMALL:
        return load_small(key, root, spec, download=download,
                          train_transform=train_transform, test_transform=test_transform)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 16:
        raise TCMError(f"image_size must be an integer of at least 16 pixels; got {image_size!r}")
    train_tf = train_transform or default_train_transform(image_size)
    test_tf = test_transform or default_test_transform(image_size)
    if key == "folder":
        fraction = 0.5 if train_class_fraction is None else train_class_fraction
        train, test = read_class_folders(root, fraction)
        where, split = root, f"class-fraction={fraction}"
    else:
        where, split = _locate(key, root, download), "official"
        train, test = _READERS[key](where)
    identity = (f"{key}|root={where}|split={split}|{CLASS_RULE}|{spec.describe()}|image_size={image_size}|"
                f"train_tf={describe_transform(train_tf)}|test_tf={describe_transform(test_tf)}")
    return image_splits(key, train, test, where=where, spec=spec, image_size=image_size,
                        train_transform=train_tf, test_transform=test_tf, identity=identity)


def _locate(key: str, root: Path, download: bool) -> Path:
    layout = layouts.LAYOUTS[key]
    reason = ""
    # download only into a fresh folder: an incomplete one is reported, never overwritten
    if download and layouts.find(root, layout) is None and not (root / layout.folder).exists():
        reason = try_download(key, root)
    return layouts.locate(root, layout, extra=reason)
