"""How many processes decode images ahead of the model, and whether batches go through pinned
memory: the ``DataLoader`` settings for image files on a device (``loader_options``). On CUDA
the GPU outruns one decoding process many times over (ResNet-50 in bf16 trains thousands of
images per second), so up to ``CUDA_WORKERS`` workers per process, pinned memory for
non-blocking copies, and a deeper prefetch; on a CPU, which also does the training, 2 workers."""

from __future__ import annotations

import os

import torch

CUDA_WORKERS = 8  # decoding processes per GPU (fewer when the machine has fewer cores)


def loader_options(device: torch.device, world: int = 1) -> dict:
    """``DataLoader`` keyword arguments for image files on ``device``; ``world``: processes
    (DDP ranks) sharing the machine's cores, one left for the main process."""
    if torch.device(device).type != "cuda":
        return {"num_workers": 2}
    cores = max(1, (os.cpu_count() or 2) // max(1, world) - 1)
    return {"num_workers": min(CUDA_WORKERS, cores), "pin_memory": True, "prefetch_factor": 4}
