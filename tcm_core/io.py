"""Reading and writing embedding files (``.npz`` with ``embeddings (n, d)`` and ``labels (n,)``).

User files are never unpickled (``allow_pickle=False``); writes are atomic (temporary file,
then rename), so a reader never sees a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from tcm_core.errors import TCMError

REQUIRED_ARRAYS = ("embeddings", "labels")


def load_embeddings(path) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(embeddings, labels)`` from an ``.npz`` file, or raise ``TCMError``."""
    path = Path(path)
    if not path.exists():
        raise TCMError(f"file not found: {path}")
    if path.is_dir():
        raise TCMError(f"{path} is a folder; expected an .npz file with arrays {REQUIRED_ARRAYS}")
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise TCMError(f"{path} is not an .npz archive of arrays (pickled data is never loaded); "
                           "save with numpy.savez(path, embeddings=..., labels=...)") from None
        raise TCMError(f"{path} is not a readable .npz file: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise TCMError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise TCMError(f"{path} is a single .npy array; expected an .npz with arrays {REQUIRED_ARRAYS}")
    with data:
        missing = [k for k in REQUIRED_ARRAYS if k not in data.files]
        if missing:
            raise TCMError(f"{path} lacks array(s) {missing}; it has {sorted(data.files)}")
        try:
            return data["embeddings"], data["labels"]
        except ValueError as exc:
            raise TCMError(f"{path}: an array needs pickle (object dtype), which is never loaded; "
                           f"store numbers or fixed-width strings ({exc})") from None
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise TCMError(f"{path}: an array could not be read ({exc})") from None


def atomic_write(path, write) -> None:
    """Call ``write(binary file)`` on a temporary file beside ``path``, then rename it over
    ``path``: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_embeddings(path, embeddings, labels) -> None:
    """Atomically write the ``.npz`` that ``load_embeddings`` and ``evaluate`` read."""
    atomic_write(path, lambda f: np.savez(f, embeddings=np.asarray(embeddings), labels=np.asarray(labels)))


def save_json(path, obj) -> None:
    """Atomically write ``obj`` as pretty JSON."""
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))
