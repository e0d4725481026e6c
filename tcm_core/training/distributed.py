"""DistributedDataParallel plumbing for ``torchrun --nproc_per_node N python -m tcm_core train``:
NCCL on GPUs, gloo on CPUs. Each rank trains on its share of the batches; test embeddings are
gathered to rank 0, which evaluates and writes the run."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world, device) — starts the process group when launched by torchrun."""
    if world_size() <= 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def gather_rows(local: torch.Tensor, world: int) -> torch.Tensor:
    """Concatenate every rank's ``(n_r, ...)`` rows in rank order (all ranks get the result)."""
    if world <= 1:
        return local
    sizes = [torch.zeros(1, dtype=torch.long, device=local.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], device=local.device))
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=local.device)
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes)])


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
