"""The run cache's key: what makes two training requests the same run.

Training is deterministic (seeded weights, batch order and augmentations; METHOD.md, "Training"),
so a request whose full config (seed included), data and code equal a finished run's gives that
run again, exactly. ``request_key`` hashes the three: the request's arguments (without where it
writes), the data's identity (``data_identity``: every file of the dataset's folder by relative
path, size and modification time) and the code version (``code_version``: the ``tcm_core``
sources). Change a byte of any and the key changes, so a cache hit is never stale.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from tcm_core.data.layouts import LAYOUTS
from tcm_core.data.registry import DATASETS
from tcm_core.data.roots import resolve_data_dir
from tcm_core.models.feature_cache import cache_key
from tcm_core.models.weights import weights_id

SOURCES = Path(__file__).resolve().parents[1]  # the tcm_core package


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 of every ``tcm_core`` source file (path and bytes), read once per process."""
    digest = hashlib.sha256()
    for path in sorted(SOURCES.rglob("*.py")):
        digest.update(str(path.relative_to(SOURCES)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _files(folder: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime in ns) of every file under ``folder``, sorted."""
    found = []
    for where, _, names in os.walk(folder):
        for name in names:
            stat = (Path(where) / name).stat()
            found.append((str((Path(where) / name).relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return sorted(found)


def data_folder(config: dict) -> Path | None:
    """The folder a config's dataset reads (None for the bundled 8x8 digits)."""
    name, root = config.get("dataset"), resolve_data_dir(config.get("data_dir"))
    info = DATASETS.get(name)
    if name == "digits":
        return None
    if info is not None and info.torchvision_folder:
        return root / info.torchvision_folder
    if name in LAYOUTS and (root / LAYOUTS[name].folder).is_dir():
        return root / LAYOUTS[name].folder
    return root  # a folder of class folders, or a benchmark given as its own folder


def data_identity(config: dict) -> dict:
    """What a run's data is: the dataset's name, its folder and that folder's file listing
    (hashed); the weights file's size and time when ``weights`` is a file."""
    folder = data_folder(config)
    listing = _files(folder) if folder is not None and folder.is_dir() else []
    identity = dict(dataset=config.get("dataset"), folder=str(folder), files=cache_key(listing))
    weights = config.get("weights")
    if weights and Path(weights).is_file():
        identity["weights"] = weights_id(Path(weights))
    return identity


def request_key(kind: str, args: dict, config: dict | None) -> str:
    """sha256 of (kind, arguments, the data's identity, the code version): equal keys, equal runs.
    ``args`` must be JSON-able and hold only what changes the result (not the output folder)."""
    return cache_key(dict(kind=kind, args=args, code=code_version(),
                          data=None if config is None else data_identity(config)))
