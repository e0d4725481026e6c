"""Compute-device selection: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

from tcm_core.errors import TCMError

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def resolve_device(name: str | None = "auto") -> torch.device:
    """Return the torch device for ``name`` ('auto' picks the fastest one available)."""
    name = (name or "auto").lower()
    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise TCMError(f"device must be one of {', '.join(DEVICE_CHOICES)}; got {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TCMError("device 'cuda' was asked for, but no CUDA GPU is available; use --device cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise TCMError("device 'mps' was asked for, but Apple MPS is not available; use --device cpu")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """A human-readable name: the GPU model, or 'CPU (n threads)'."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"
