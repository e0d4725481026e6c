"""A run on disk: a folder with ``config.json``, ``metrics.json``, ``embeddings.npz`` (test
embeddings, what ``evaluate`` reads), ``val_embeddings.npz`` (validation, when the data has a
validation split) and ``checkpoint.pt``. All written atomically; a comparison is a folder
with ``baseline/`` and ``tcm/`` runs. The app's run picker reads these folders.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tcm_core.errors import TCMError
from tcm_core.io import atomic_write, load_embeddings, save_embeddings, save_json
from tcm_core.training.config import TrainConfig

CONFIG, METRICS, EMBEDDINGS, CHECKPOINT = "config.json", "metrics.json", "embeddings.npz", "checkpoint.pt"
VAL_EMBEDDINGS = "val_embeddings.npz"  # the validation split's, where margins are chosen
PAIR = ("baseline", "tcm")


def new_run_dir(root, *parts: str) -> Path:
    """``root/<YYYYmmdd-HHMMSS>-<parts joined by '-'>``: the one way new run folders are named
    (sorted by name, they are sorted by time)."""
    name = "-".join([time.strftime("%Y%m%d-%H%M%S"), *(str(p) for p in parts if p)])
    return Path(root) / name


def save_config(run_dir, config: TrainConfig) -> None:
    save_json(Path(run_dir) / CONFIG, config.to_dict())


def load_config(run_dir) -> TrainConfig:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise TCMError(f"{run_dir} is not a run folder: {CONFIG} is missing")
    return TrainConfig.from_dict(read_json(path))


def save_metrics(run_dir, metrics: dict) -> None:
    save_json(Path(run_dir) / METRICS, metrics)


def load_metrics(run_dir) -> dict:
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise TCMError(f"{run_dir} has no {METRICS} yet (the run has not finished an epoch)")
    return read_json(path)


def read_json(path) -> dict:
    """A run file's JSON object, or ``TCMError`` naming the folder and the damage (a file cut
    short by a full disk or an interrupted copy, or not JSON at all)."""
    path = Path(path)
    folder = "/".join(path.parent.parts[-2:])  # e.g. "my-pair/tcm": enough to find it, no server paths
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TCMError(f"run folder {folder!r} is damaged: {path.name} cannot be read "
                       f"({type(exc).__name__}: {exc}); copy it again, retrain, or delete the folder") from None
    if not isinstance(data, dict):
        raise TCMError(f"run folder {folder!r} is damaged: {path.name} holds a "
                       f"{type(data).__name__}, not a JSON object")
    return data


def embeddings_file(split: str) -> str:
    """The file name of a run's ``split`` embeddings ("test" or "val"; TCMError otherwise)."""
    if split not in ("test", "val"):
        raise TCMError(f"split must be 'test' or 'val'; got {split!r}")
    return EMBEDDINGS if split == "test" else VAL_EMBEDDINGS


def save_run_embeddings(run_dir, embeddings, labels, split: str = "test") -> None:
    save_embeddings(Path(run_dir) / embeddings_file(split), embeddings, labels)


def load_run_embeddings(run_dir, split: str = "test"):
    """``(embeddings, labels)`` of a run's test split (or ``split="val"``: validation, which
    runs written before validation existed do not have: TCMError)."""
    return load_embeddings(Path(run_dir) / embeddings_file(split))


def save_checkpoint(run_dir, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(Path(run_dir) / CHECKPOINT, lambda f: f.write(buffer.getvalue()))


def load_checkpoint(run_dir) -> dict:
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise TCMError(f"cannot resume: {path} does not exist (train at least one epoch first)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a foreign or damaged file: never unpickled beyond tensors
        raise TCMError(f"cannot resume: {path} is not a readable checkpoint ({exc})") from None


@dataclass(frozen=True)
class RunPair:
    """A baseline run and its +TCM twin (same initial weights and batch order)."""

    root: Path

    @property
    def baseline(self) -> Path:
        return self.root / "baseline"

    @property
    def tcm(self) -> Path:
        return self.root / "tcm"


def find_pairs(root) -> list[RunPair]:
    """Comparison folders under ``root`` whose two runs both have metrics, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [RunPair(p) for p in root.iterdir()
             if all((p / side / METRICS).is_file() for side in PAIR)]
    return sorted(found, key=lambda r: (r.tcm / METRICS).stat().st_mtime, reverse=True)
