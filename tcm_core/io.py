"""Reading and writing embedding files: ``embeddings (n, d)`` and ``labels (n,)`` as ``.npz``
(two arrays), ``.safetensors`` (two tensors) or ``.parquet`` (a label column and either one
list column of embeddings or numbered embedding columns).

User files are never unpickled (``allow_pickle=False``; safetensors and parquet hold no code);
writes are atomic (temporary file, then rename), so a reader never sees a half-written file.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from tcm_core.errors import TCMError

REQUIRED_ARRAYS = ("embeddings", "labels")
FORMATS = (".npz", ".safetensors", ".parquet")
LABEL_COLUMNS = ("labels", "label", "class", "y")  # the first present is the parquet label column
EMBEDDING_COLUMNS = ("embeddings", "embedding")  # preferred names of a parquet list column


def load_embeddings(path) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(embeddings, labels)`` from an ``.npz``, ``.safetensors`` or ``.parquet`` file,
    or raise ``TCMError`` naming the file."""
    path = Path(path)
    if not path.exists():
        raise TCMError(f"file not found: {path}")
    if path.is_dir():
        raise TCMError(f"{path} is a folder; expected an .npz file with arrays {REQUIRED_ARRAYS}")
    with open(path, "rb") as f:
        return read_embeddings(str(path), f)


def read_embeddings(name: str, source) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings, labels)`` from ``source`` (bytes or a binary file) in the format of the
    file name ``name``'s suffix; errors name ``name``."""
    suffix = Path(name).suffix.lower()
    if suffix == ".npy":
        raise TCMError(f"{name} is a single .npy array; expected an .npz with arrays {REQUIRED_ARRAYS}")
    if suffix not in FORMATS:
        raise TCMError(f"{name}: unsupported file type {suffix or '(none)'}; expected one of {', '.join(FORMATS)}")
    data = source if isinstance(source, (bytes, bytearray)) else source.read()
    if not data:
        raise TCMError(f"{name} is empty (0 bytes), not a readable {suffix} file")
    return {".npz": _read_npz, ".safetensors": _read_safetensors, ".parquet": _read_parquet}[suffix](name, bytes(data))


def _read_npz(name: str, data: bytes):
    try:
        arrays = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise TCMError(f"{name} is not an .npz archive of arrays (pickled data is never loaded); "
                           "save with numpy.savez(path, embeddings=..., labels=...)") from None
        raise TCMError(f"{name} is not a readable .npz file: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise TCMError(f"{name} is not a readable .npz file ({type(exc).__name__}: {exc})") from None
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise TCMError(f"{name} is a single .npy array; expected an .npz with arrays {REQUIRED_ARRAYS}")
    with arrays:
        missing = [k for k in REQUIRED_ARRAYS if k not in arrays.files]
        if missing:
            raise TCMError(f"{name} lacks array(s) {missing}; it has {sorted(arrays.files)}")
        try:
            return arrays["embeddings"], arrays["labels"]
        except ValueError as exc:
            raise TCMError(f"{name}: an array needs pickle (object dtype), which is never loaded; "
                           f"store numbers or fixed-width strings ({exc})") from None
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise TCMError(f"{name}: an array could not be read ({exc})") from None


def _read_safetensors(name: str, data: bytes):
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        tensors = load(data)
    except (SafetensorError, ValueError, TypeError, OverflowError) as exc:
        raise TCMError(f"{name} is not a readable .safetensors file ({exc})") from None
    missing = [k for k in REQUIRED_ARRAYS if k not in tensors]
    if missing:
        raise TCMError(f"{name} lacks tensor(s) {missing}; it has {sorted(tensors)}")
    return tensors["embeddings"], tensors["labels"]


def _read_parquet(name: str, data: bytes):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise TCMError(f"{name} is not a readable .parquet file ({exc})") from None
    columns = table.column_names
    label = next((c for c in LABEL_COLUMNS if c in columns), None)
    if label is None:
        raise TCMError(f"{name} has no label column (one of {', '.join(LABEL_COLUMNS)}); it has {columns[:20]}")
    labels = _parquet_labels(name, table.column(label))
    lists = [c for c in columns if pa.types.is_list(table.schema.field(c).type)
             or pa.types.is_fixed_size_list(table.schema.field(c).type) or pa.types.is_large_list(table.schema.field(c).type)]
    preferred = [c for c in EMBEDDING_COLUMNS if c in lists] or lists
    if preferred:
        if len(preferred) > 1:
            raise TCMError(f"{name} has several list columns {preferred}; name the embeddings column 'embeddings'")
        return _parquet_list(name, table.column(preferred[0])), labels
    numbered = _numbered_columns([c for c in columns if c != label])
    if not numbered:
        raise TCMError(f"{name} has no embeddings: expected one list column (e.g. 'embeddings') or numbered "
                       f"columns (e.g. e0, e1, ...); it has {columns[:20]}")
    try:
        return np.column_stack([table.column(c).to_numpy(zero_copy_only=False) for c in numbered]), labels
    except (pa.ArrowException, ValueError) as exc:
        raise TCMError(f"{name}: the embedding columns could not be read as numbers ({exc})") from None


def _numbered_columns(columns: list[str]) -> list[str]:
    """Columns named ``<prefix><number>`` sharing one prefix, in number order (e.g. ``e0 .. e127``
    or ``0 .. 127``); [] when there are none or they do not share one prefix."""
    parts = [re.fullmatch(r"(.*?)(\d+)", c) for c in columns]
    if not columns or not all(parts) or len({p.group(1) for p in parts}) != 1:
        return []
    return [c for _, c in sorted(zip((int(p.group(2)) for p in parts), columns))]


def _parquet_list(name: str, column) -> np.ndarray:
    if column.null_count:
        raise TCMError(f"{name}: the embeddings column has {column.null_count} missing row(s)")
    rows = column.to_pylist()
    sizes = {len(r) for r in rows}
    if len(sizes) > 1:
        raise TCMError(f"{name}: embeddings must all have one dimension; got lengths {sorted(sizes)[:5]}")
    try:
        return np.asarray(rows, dtype=np.float64) if rows else np.zeros((0, 0))
    except (TypeError, ValueError) as exc:
        raise TCMError(f"{name}: the embeddings column must hold numbers ({exc})") from None


def _parquet_labels(name: str, column) -> np.ndarray:
    import pyarrow as pa

    if column.null_count:
        raise TCMError(f"{name}: the label column has {column.null_count} missing value(s)")
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        return np.asarray([str(v) for v in column.to_pylist()], dtype=str)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return column.to_numpy(zero_copy_only=False)
    raise TCMError(f"{name}: labels must be integers or strings; got the parquet type {kind}")


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
