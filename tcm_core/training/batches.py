"""How inputs reach the model: training batches and evaluation chunks, on any device.

- **In memory** (cached backbone features of a frozen backbone; the toys' image tensors when
  they have no training transform): a batch is one index of the whole tensor, no per-item
  Python and no collation. On CUDA the tensor is copied to the device once, so a step does
  no host-to-device copy at all (``device_inputs``).
- **Image files**: a ``DataLoader`` whose worker processes decode and augment ahead of the
  model (``data.workers.loader_options``: more workers and pinned memory on CUDA,
  non-blocking copies).
  Workers start again each epoch, so an epoch's augmentations depend on (seed, epoch) alone
  and a resumed run sees the ones an uninterrupted run would.

The sampler decides which items form a batch; every path fetches exactly those (tested
against the plain per-item ``DataLoader``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from tcm_core.data.small import TensorImageDataset
from tcm_core.data.workers import loader_options

EVAL_CHUNK = 256  # embedding rows per forward pass at evaluation


def in_memory(dataset) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(images, labels)`` of a dataset whose items are rows of two tensors with nothing done
    to them (a ``TensorImageDataset`` without transform, a ``TensorDataset`` of two), else None."""
    if isinstance(dataset, TensorImageDataset) and dataset.transform is None:
        return dataset.images, dataset.labels
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        return dataset.tensors[0], dataset.tensors[1]
    return None


def device_inputs(inputs, device: torch.device):
    """``inputs`` on ``device`` when they are a tensor (cached features), else unchanged."""
    return inputs.to(device) if isinstance(inputs, torch.Tensor) else inputs


class _Current(Sampler):
    """Forwards to whatever batch sampler is current (the trainer may swap it)."""

    def __init__(self, sampler):
        self.sampler = sampler

    def __iter__(self):
        return iter(self.sampler)

    def __len__(self):
        return len(self.sampler)


class TrainBatches:
    """``(inputs, labels)`` training batches on ``device`` for the indices ``sampler`` draws.

    ``inputs`` are cached features (a tensor, ``features=True``) or a dataset; ``labels`` the
    training labels (n,). Iterate once per epoch; ``sampler`` may be replaced between epochs.
    """

    def __init__(self, inputs, labels, sampler, device: torch.device, *, features: bool = False,
                 world: int = 1):
        self.device, self.batch_sampler = device, _Current(sampler)
        memory = (inputs, None) if features else in_memory(inputs)
        self.loader = None
        if memory is None:
            self.loader = DataLoader(inputs, batch_sampler=self.batch_sampler, **loader_options(device, world))
            return
        # labels come from the split (not the dataset's own), as for the DataLoader path
        self.inputs = device_inputs(memory[0], device)
        self.labels = torch.tensor(np.asarray(labels), dtype=torch.long, device=device)

    @property
    def sampler(self):
        return self.batch_sampler.sampler

    @sampler.setter
    def sampler(self, value):
        self.batch_sampler.sampler = value

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self):
        if self.loader is not None:
            for x, y in self.loader:
                yield (x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))
            return
        for idx in self.batch_sampler:
            rows = torch.as_tensor(idx, dtype=torch.long).to(self.inputs.device, non_blocking=True)
            yield (self.inputs.index_select(0, rows).to(self.device, non_blocking=True),
                   self.labels.index_select(0, rows.to(self.labels.device)))


def eval_chunks(inputs, indices: np.ndarray, device: torch.device, *, features: bool = False):
    """The inputs of ``indices`` (in order) on ``device``, ``EVAL_CHUNK`` rows at a time:
    cached features and in-memory tensors indexed directly, image files through a
    ``DataLoader`` (workers decode ahead of the model)."""
    indices = np.asarray(indices, dtype=np.int64)
    chunks = np.array_split(indices, max(1, int(np.ceil(len(indices) / EVAL_CHUNK))))
    memory = (inputs, None) if features else in_memory(inputs)
    if memory is not None:
        for chunk in chunks:
            rows = torch.from_numpy(chunk).to(memory[0].device)
            yield memory[0].index_select(0, rows).to(device, non_blocking=True)
        return
    options = loader_options(device) if len(chunks) > 1 else dict(num_workers=0)  # a worker start costs more than one chunk
    loader = DataLoader(inputs, batch_sampler=[c.tolist() for c in chunks], **options)
    for batch in loader:
        yield batch[0].to(device, non_blocking=True)

