"""Embeddings people bring from their own models, stored as runs without a model.

An upload is a run folder ``<runs>/uploads/<sha256 of the file>/`` holding ``embeddings.npz``
(the test embeddings, as every run), ``metrics.json`` (``evaluate`` at the default settings) and
``upload.json`` (the manifest: display name, original file name, format, time). A pair of
uploads (before / after) is ``<runs>/uploads/pairs/<hash>-<hash>/pair.json`` naming the two.
Folders are written to a temporary name and renamed, so a failed or half-finished upload never
shows up; the same file uploaded again is found by its hash and costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.io import read_embeddings, save_json
from tcm_core.training import runs

UPLOADS, PAIRS = "uploads", "pairs"
MANIFEST, PAIR_MANIFEST = "upload.json", "pair.json"


@dataclass(frozen=True)
class Upload:
    """One stored upload: its folder (a run folder) and manifest fields."""

    folder: Path
    name: str
    file: str
    sha256: str
    time: str


@dataclass(frozen=True)
class UploadPair:
    """Two uploads compared as before (``baseline``) and after (``tcm``): the run folders."""

    root: Path
    name: str
    baseline: Path
    tcm: Path


def uploads_root(runs_root) -> Path:
    return Path(runs_root) / UPLOADS


@dataclass(frozen=True, eq=False)
class CheckedUpload:
    """A file that passed the checks, evaluated but not stored yet (``stored``: already was)."""

    file_name: str
    name: str
    data_bytes: int
    sha256: str
    embeddings: object = None
    labels: object = None
    metrics: dict | None = None
    stored: Upload | None = None


def check_upload(runs_root, file_name: str, data: bytes, *, name: str | None = None,
                 max_bytes: int | None = None) -> CheckedUpload:
    """Validate ``data`` (the bytes of ``file_name``) with ``evaluate``'s rules and evaluate it,
    or find it stored already by its hash (instant). Errors (``TCMError``) name the file."""
    if max_bytes is not None and len(data) > max_bytes:
        raise TCMError(f"{file_name} is {len(data) / 2**20:.1f} MB, over the upload cap of "
                       f"{max_bytes / 2**20:.0f} MB (server.maxUploadSize)")
    digest = hashlib.sha256(data).hexdigest()
    label = (name or Path(file_name).stem).strip() or digest[:12]
    folder = uploads_root(runs_root) / digest
    if (folder / MANIFEST).is_file():
        return CheckedUpload(file_name, label, len(data), digest, stored=load_upload(folder))
    embeddings, labels = read_embeddings(file_name, data)
    from tcm_core.metrics import evaluate

    try:
        result = evaluate(embeddings, labels)
    except TCMError as exc:
        raise TCMError(f"{file_name}: {exc}") from None
    return CheckedUpload(file_name, label, len(data), digest, embeddings, labels, result.to_dict())


def store_upload(runs_root, checked: CheckedUpload) -> Upload:
    """Write a checked upload's run folder (under a temporary name, then renamed)."""
    if checked.stored is not None:
        return checked.stored
    folder = uploads_root(runs_root) / checked.sha256
    manifest = {"name": checked.name, "file": Path(checked.file_name).name,
                "format": Path(checked.file_name).suffix.lower(), "sha256": checked.sha256,
                "time": time.strftime("%Y-%m-%d %H:%M:%S"), "bytes": checked.data_bytes}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{checked.sha256[:12]}-"))
    try:
        runs.save_run_embeddings(tmp, checked.embeddings, checked.labels)
        runs.save_metrics(tmp, checked.metrics)
        save_json(tmp / MANIFEST, manifest)
        os.rename(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / MANIFEST).is_file():  # not a twin upload that finished first
            raise
    return load_upload(folder)


def load_upload(folder) -> Upload:
    folder = Path(folder)
    m = _read_manifest(folder / MANIFEST)
    return Upload(folder, m["name"], m["file"], m["sha256"], m["time"])


def add_upload_pair(runs_root, before: Upload, after: Upload, name: str | None = None) -> UploadPair:
    """Store (or rename) the before/after pair of two stored uploads."""
    if before.sha256 == after.sha256:
        raise TCMError(f"{before.file} and {after.file} are the same file; a pair compares two different runs")
    root = uploads_root(runs_root) / PAIRS / f"{before.sha256[:16]}-{after.sha256[:16]}"
    pair_name = (name or "").strip() or f"{before.name} vs {after.name}"
    save_json(root / PAIR_MANIFEST, {"name": pair_name, "baseline": before.sha256, "tcm": after.sha256,
                                     "time": time.strftime("%Y-%m-%d %H:%M:%S")})
    return load_upload_pair(root)


def load_upload_pair(root) -> UploadPair:
    root = Path(root)
    m = _read_manifest(root / PAIR_MANIFEST)
    uploads = root.parents[1]
    return UploadPair(root, m["name"], uploads / m["baseline"], uploads / m["tcm"])


def find_uploads(runs_root) -> list[Upload]:
    """Stored single uploads, newest first (damaged folders left out)."""
    return _newest(_loaded(load_upload, uploads_root(runs_root).glob(f"*/{MANIFEST}")))


def find_upload_pairs(runs_root) -> list[UploadPair]:
    """Stored upload pairs whose two uploads both exist, newest first."""
    found = _loaded(load_upload_pair, (uploads_root(runs_root) / PAIRS).glob(f"*/{PAIR_MANIFEST}"))
    return _newest([p for p in found if (p.baseline / MANIFEST).is_file() and (p.tcm / MANIFEST).is_file()])


def remove_upload(runs_root, upload: Upload) -> int:
    """Delete a stored upload and the pairs it belongs to; returns how many pairs went with it."""
    gone = [p for p in find_upload_pairs(runs_root) if upload.folder in (p.baseline, p.tcm)]
    for p in gone:
        shutil.rmtree(p.root, ignore_errors=True)
    shutil.rmtree(upload.folder, ignore_errors=True)
    return len(gone)


def is_upload(folder) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def is_upload_pair(folder) -> bool:
    return (Path(folder) / PAIR_MANIFEST).is_file()


def upload_config(folder) -> dict:
    """What the pages show of an upload where a trained run shows its config."""
    m = _read_manifest(Path(folder) / MANIFEST)
    metrics = runs.load_metrics(folder)
    return {"dataset": m["name"], "loss": f"uploaded {m['file']}", "embedding_dim": metrics.get("dim"),
            "uploaded": True}


def _read_manifest(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TCMError(f"{path.parent} is not a readable upload ({path.name}: {exc})") from None


def _loaded(load, manifests) -> list:
    found = []
    for manifest in manifests:
        try:
            found.append(load(manifest.parent))
        except (TCMError, KeyError):
            continue
    return found


def _newest(items: list) -> list:
    return sorted(items, key=lambda u: (getattr(u, "folder", None) or u.root).stat().st_mtime, reverse=True)
