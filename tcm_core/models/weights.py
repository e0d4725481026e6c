"""Backbone weights: random init, a torchvision weight name, or a local state-dict file.

Owns telling the three apart, reading a state-dict file safely (``weights_only=True``: tensors
only, never arbitrary pickled objects), checking it fits a backbone key by key and shape by
shape, and a stable ``weights_id`` for feature caches.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import torch
import torchvision
from torch import nn

from tcm_core.errors import TCMError

RANDOM_NAMES = ("", "none", "random")
WEIGHT_FILE_SUFFIXES = (".pth", ".pt")
# Classifier heads that backbones drop; such keys in a full-model file are ignored.
HEAD_PREFIXES = ("classifier.", "fc.", "heads.")


def is_random(weights: str | os.PathLike | None) -> bool:
    """True for random initialisation: None, '', 'none' or 'random'."""
    return weights is None or (isinstance(weights, str) and weights.strip().lower() in RANDOM_NAMES)


def is_weight_file(weights: str | os.PathLike | None) -> bool:
    """True when ``weights`` names a file (a Path, a .pth/.pt name, a separator, or existing)."""
    if weights is None or is_random(weights):
        return False
    if isinstance(weights, os.PathLike):
        return True
    text = str(weights)
    return text.lower().endswith(WEIGHT_FILE_SUFFIXES) or "/" in text or "\\" in text or os.path.isfile(text)


def _existing_file(weights: str | os.PathLike) -> Path:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise TCMError(f"weights file not found: {str(path)!r}; give an existing .pth/.pt state-dict file")
    return path.resolve()


def weights_id(weights: str | os.PathLike | None) -> str:
    """A stable identity for caches: 'random', 'file:<path>:<size>:<mtime_ns>', or the torchvision name."""
    if is_random(weights):
        return "random"
    if is_weight_file(weights):
        path = _existing_file(weights)
        stat = path.stat()
        return f"file:{path}:{stat.st_size}:{stat.st_mtime_ns}"
    return f"torchvision-{torchvision.__version__}:{str(weights).split('.')[-1].upper()}"


def read_state_dict(weights: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a tensors-only state dict from a file (unwrapping {'state_dict': ...} and 'module.')."""
    path = _existing_file(weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        raise TCMError(
            f"could not read {str(path)!r} as a weights-only state dict ({error}); save it with "
            "torch.save(model.state_dict(), path)"
        ) from error
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TCMError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict of tensors")
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_backbone_state(module: nn.Module, state: dict[str, torch.Tensor], *, name: str, source: str) -> None:
    """Copy ``state`` into ``module``; raise TCMError naming missing keys or mismatched shapes."""
    expected = module.state_dict()
    state = {k: v for k, v in state.items() if k in expected or not k.startswith(HEAD_PREFIXES)}
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise TCMError(
            f"{source} does not fit backbone {name!r}: {len(missing)} backbone keys are missing, "
            f"e.g. {missing[:5]}; give a state dict saved from torchvision's {name}"
        )
    wrong = [
        f"{k} (file {tuple(state[k].shape)}, model {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if wrong:
        raise TCMError(
            f"{source} does not fit backbone {name!r}: {len(wrong)} shapes differ, e.g. "
            f"{'; '.join(wrong[:3])}; is it a state dict for a different model?"
        )
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        warnings.warn(f"{source}: ignored {len(unexpected)} keys not in {name!r}, e.g. {unexpected[:3]}")
    module.load_state_dict(state, strict=False)


def torchvision_weights(model_name: str, weights: str) -> torchvision.models.WeightsEnum:
    """Resolve a weight name ('DEFAULT', 'IMAGENET1K_V1', 'ResNet18_Weights.IMAGENET1K_V1')."""
    enum = torchvision.models.get_model_weights(model_name)
    key = str(weights).split(".")[-1].upper()
    valid = ["DEFAULT", *(member.name for member in enum)]
    if key not in valid:
        raise TCMError(
            f"unknown weights {weights!r} for {model_name}; valid: None (random), "
            f"{', '.join(valid)}, or a path to a .pth/.pt state-dict file"
        )
    return enum[key]
