"""A pair's two runs trained at once, one per thread (the quick retrain on a CPU).

The baseline and the +TCM run do the same work on different weights. On a small CPU two runs
side by side, with one intra-op thread each, beat one run after the other with two: a small
model's ops are too short to split well, and spinning threads collapse on a shared machine.
With one torch thread and one numba thread per run every op runs exactly as it would alone,
so each run's numbers are bit for bit those of training it alone (tested). It is used only
where nothing else could differ (``can_share``): a training step that draws no random numbers
(the global torch generator is shared by the threads), one process, one evaluation at the end.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import torch
from torch import nn

from tcm_core.training.batches import in_memory


def can_share(session, runs: int, model: nn.Module) -> bool:
    """True when a ``Session``'s ``runs`` runs of ``model`` can train side by side with the
    same results: two runs, evaluated only at the end, on one CPU process with one torch
    thread, and steps without randomness (cached features or transform-free in-memory
    images, no dropout)."""
    prepared = session.prepared
    steady = (prepared.features or in_memory(prepared.train_inputs) is not None) and not random_layers(model)
    return (runs == 2 and session.eval_last_only and session.world == 1 and session.device.type == "cpu"
            and torch.get_num_threads() == 1 and steady)


def random_layers(model: nn.Module) -> bool:
    """Whether ``model`` has layers that draw random numbers in training (dropout)."""
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())


def fit_side_by_side(trainers) -> list[dict]:
    """``trainer.fit()`` of each ``RunTrainer`` in its own thread; their results in order.

    A failure in one run (stopped, diverged) is raised once the other has ended."""
    def fit(trainer):
        numba.set_num_threads(1)  # per thread: the metrics' kernels of each run on one core
        return trainer.fit()

    with ThreadPoolExecutor(len(trainers), thread_name_prefix="tcm-run") as pool:
        futures = [pool.submit(fit, t) for t in trainers]
        return [f.result() for f in futures]
