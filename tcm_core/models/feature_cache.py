"""Backbone features of a whole dataset, computed once and cached on disk.

``extract_features`` runs a backbone over a dataset (eval mode, no grad) -> features (N, F).
``cached_features`` stores that tensor under a hash of ``key_parts`` (dataset identity, backbone,
``weights_id``, transform description), writes it atomically (temp file, then ``os.replace``)
and loads it with ``weights_only=True``; an unreadable or mismatched file is recomputed.
Cache folder: ``$TCM_CACHE_DIR``, else ``~/.cache/tcm_explorer/features``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tcm_core.data.workers import loader_options
from tcm_core.errors import TCMError
from tcm_core.io import atomic_write

Progress = Callable[[int, int], None]


def default_cache_dir() -> Path:
    """``$TCM_CACHE_DIR`` if set, else ``~/.cache/tcm_explorer/features``."""
    env = os.environ.get("TCM_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tcm_explorer" / "features"


def cache_key(key_parts: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``key_parts`` (sorted keys; non-JSON values as str)."""
    text = json.dumps(key_parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    dataset: Dataset,
    *,
    device: torch.device | str,
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Features (N, F) float32 on the CPU, in dataset order; items are images or (image, ...).

    ``num_workers`` None: none on a CPU (it computes too), on CUDA ``data.workers.loader_options``
    (decoding processes, pinned memory and non-blocking copies, so the GPU is not kept waiting);
    on CUDA images go channels-last. Features stay float32 (no bf16: they are cached)."""
    total = len(dataset)
    if total == 0:
        raise TCMError("cannot extract features of an empty dataset; check the data split")
    if batch_size < 1:
        raise TCMError(f"batch_size must be a positive integer; got {batch_size!r}")
    device = torch.device(device)
    cuda = device.type == "cuda"
    options = {"num_workers": num_workers or 0}
    if num_workers is None and cuda:
        options = loader_options(device)
    was_training = backbone.training
    backbone.to(device).eval()
    if cuda:
        backbone.to(memory_format=torch.channels_last)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, **options)
    chunks, done = [], 0
    try:
        for batch in loader:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            images = images.to(device, non_blocking=True)
            if cuda and images.ndim == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            chunks.append(backbone(images).float())  # (b, F), on the device until the end
            done += len(images)
            if progress is not None:
                progress(done, total)
    finally:
        backbone.train(was_training)
    return torch.cat(chunks).cpu()  # (N, F): one copy back, no sync per batch


def _load(path: Path, expected_rows: int, key_text: str) -> torch.Tensor | None:
    """The cached features, or None if the file is missing, unreadable or for other data."""
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        features = entry["features"]
        if entry["key"] != key_text or features.ndim != 2 or features.shape[0] != expected_rows:
            return None
        return features
    except Exception:  # any corrupt or foreign file: recompute rather than crash
        return None


def _save(path: Path, features: torch.Tensor, key_text: str) -> None:
    """Write atomically so a crash or a parallel reader never sees a half-written file."""
    try:
        atomic_write(path, lambda handle: torch.save({"features": features, "key": key_text}, handle))
    except OSError as error:
        warnings.warn(f"could not write the feature cache {str(path)!r} ({error}); continuing uncached")


def cached_features(
    backbone: nn.Module,
    dataset: Dataset,
    *,
    key_parts: dict[str, Any],
    cache_dir: str | os.PathLike | None = None,
    device: torch.device | str,
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """``extract_features`` stored on disk under a hash of ``key_parts``; (N, F) float32.

    A cache hit reports ``progress(N, N)`` once. ``key_parts`` must name everything the features
    depend on (dataset and split, backbone, ``weights_id``, transform); the file is checked
    against them and against N, and recomputed on any mismatch or read error.
    """
    if not isinstance(key_parts, dict) or not key_parts:
        raise TCMError("key_parts must be a non-empty dict naming dataset, backbone, weights and transform")
    key_text = json.dumps(key_parts, sort_keys=True, default=str)
    path = Path(cache_dir or default_cache_dir()).expanduser() / f"{cache_key(key_parts)}.pt"
    features = _load(path, len(dataset), key_text)
    if features is not None:
        if progress is not None:
            progress(len(dataset), len(dataset))
        return features
    features = extract_features(
        backbone, dataset, device=device, batch_size=batch_size, num_workers=num_workers, progress=progress
    )
    _save(path, features, key_text)
    return features
