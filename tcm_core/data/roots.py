"""Where data lives: the data root a user means, and which datasets a root already holds.

The root is, in order: the ``data_dir`` argument, the ``TCM_DATA_DIR`` environment variable,
or a per-user cache folder (``$XDG_CACHE_HOME/tcm_explorer/data``, else
``~/.cache/tcm_explorer/data``). Nothing here creates folders or reads image files.
"""

from __future__ import annotations

import os
from pathlib import Path

from tcm_core.data import layouts
from tcm_core.data.folder import find_image_folders
from tcm_core.data.registry import DATASETS

_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The absolute data root: ``data_dir``, else ``$TCM_DATA_DIR``, else the user cache folder."""
    if data_dir is not None and str(data_dir).strip():
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get("TCM_DATA_DIR", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return (Path(cache).expanduser() / "tcm_explorer" / "data").resolve()


def available_datasets(data_dir: str | Path | None = None) -> dict[str, str]:
    """``{dataset name: short description}`` for every dataset found under the root.

    Only marker files are checked, so this is cheap enough for an app sidebar. ``digits`` is
    always listed (bundled with scikit-learn); ``folder`` is listed when the root, or a folder
    up to two levels below it, is a folder of class folders.
    """
    root = resolve_data_dir(data_dir)
    found: dict[str, str] = {}
    for name, info in DATASETS.items():
        raw = root / info.torchvision_folder / "raw" if info.torchvision_folder else None
        if raw is not None and all((raw / f).is_file() for f in _MNIST_FILES):
            found[name] = info.description
    found["digits"] = DATASETS["digits"].description
    for name, layout in layouts.LAYOUTS.items():
        where = layouts.find(root, layout)
        if where is not None:
            found[name] = f"{layout.description} ({where})"
    folders = find_image_folders(root) if root.is_dir() else []
    if folders:
        listed = ", ".join(f"{path} ({n} classes)" for path, n in folders[:5])
        found["folder"] = f"folders of class folders, pass one as data_dir: {listed}"
    return found
