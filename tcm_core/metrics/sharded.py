"""The upper triangle's blocks shared among ``torch.distributed`` ranks (``torchrun``).

Inside ``across_ranks()`` (all ranks must make the same metric calls), each rank streams only
its own blocks (``owned``, a fixed assignment, so every rank knows who has what) and the
per-block results are combined so that every rank ends with exactly the single-process
numbers: integer counts are summed (``sum_over_ranks``, all-reduce SUM), and the exact
distances collected for the quantile windows are gathered and sorted (``merge_windows``).
Outside it, or without a process group, every function is the identity: a DDP training whose
rank 0 evaluates alone must not wait for the others. Used by ``pairs``, ``device_pairs`` and
``retrieval`` (query blocks);
the ``evaluate`` command (``tcm_core.cli``) opens it under ``torchrun``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.distributed as dist

_sharing = False  # inside across_ranks()


@contextlib.contextmanager
def across_ranks():
    """Share the pair blocks among the process group's ranks for the metric calls inside."""
    global _sharing
    before, _sharing = _sharing, True
    try:
        yield
    finally:
        _sharing = before


def rank_and_world() -> tuple[int, int]:
    if _sharing and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def owned(starts) -> list:
    """This rank's share of ``starts`` (block starts, in order): dealt out back and forth
    (0, 1, .., W-1, W-1, .., 0, 0, 1, ..) so that big early blocks and small late ones mix."""
    rank, world = rank_and_world()
    starts = list(starts)
    if world == 1:
        return starts
    return [s for b, s in enumerate(starts) if min(b % (2 * world), 2 * world - 1 - b % (2 * world)) == rank]


def _device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sum_over_ranks(values: np.ndarray) -> np.ndarray:
    """Element-wise sum over all ranks (every rank gets it) of an integer array (as int64) or a
    float one (as float64: exact where at most one rank holds a non-zero per element)."""
    if rank_and_world()[1] == 1:
        return values
    kind = np.float64 if np.asarray(values).dtype.kind == "f" else np.int64
    t = torch.from_numpy(np.ascontiguousarray(values, dtype=kind)).to(_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().numpy().reshape(np.shape(values))


def merge_windows(collected: list[tuple[int, np.ndarray]]) -> list[tuple[int, np.ndarray]]:
    """Per quantile window ``(below, sorted values)`` of this rank -> the same over all ranks:
    counts below summed, values gathered and sorted."""
    world = rank_and_world()[1]
    if world == 1:
        return collected
    from tcm_core.training.distributed import (
        gather_rows,  # padded all_gather, rank order
    )

    below = sum_over_ranks(np.array([b for b, _ in collected], dtype=np.int64))
    sizes = torch.tensor([v.size for _, v in collected], dtype=torch.int64, device=_device())
    values = torch.from_numpy(np.concatenate([v for _, v in collected])).to(_device())
    all_sizes = gather_rows(sizes, world).view(world, -1).cpu().numpy()  # (world, windows)
    all_values = gather_rows(values, world).cpu().numpy()
    cuts = np.cumsum(all_sizes.reshape(-1))[:-1]
    parts = np.split(all_values, cuts)  # rank-major, then window
    return [(int(below[w]), np.sort(np.concatenate(parts[w :: len(collected)])))
            for w in range(len(collected))]
