"""The training loop shared by ``python -m tcm_core train`` and the app.

``train(config, out)`` trains one run, or with ``compare=True`` the baseline and the +TCM run
as a pair from identical initial weights and identical batch order, so that the difference
is TCM alone. After each epoch it evaluates R@1, OPIS and eps-OPIS on the test split (and on
the validation split, where margins are chosen, under ``validation`` in metrics.json), writes
``metrics.json``, ``embeddings.npz`` and a checkpoint (atomically), and reports to callbacks.

The state lives on objects rather than in argument lists: a ``Session`` holds what every run
of one ``train`` call shares (data, device, process group, callback), ``InitialWeights`` the
one starting point of a pair, and a ``RunTrainer`` one run's objective, optimizer, schedule,
sampler and history.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tcm_core.data import ClassBalancedBatchSampler
from tcm_core.device import describe_device, resolve_device
from tcm_core.errors import TCMError
from tcm_core.metrics.evaluation import Evaluation, evaluate
from tcm_core.training import distributed as ddp
from tcm_core.training import runs
from tcm_core.training.callbacks import Callback, TrainingStopped
from tcm_core.training.config import TrainConfig
from tcm_core.training.records import EpochRecord
from tcm_core.training.setup import (
    Prepared,
    build_loss,
    build_model,
    labels_tensor,
    prepare,
)


class TrainingDiverged(TCMError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Objective(nn.Module):
    """Model + loss in one module, so DistributedDataParallel syncs both (ArcFace has weights)."""

    def __init__(self, model, loss, features: bool):
        super().__init__()
        self.model, self.loss, self.features = model, loss, features

    def embed(self, x):
        return self.model.embed_features(x) if self.features else self.model(x)

    def forward(self, x, y):
        return self.loss(self.embed(x).float(), y)


def train(config: TrainConfig, out, *, compare: bool = False, resume: bool = False,
          callback: Callback | None = None, eval_last_only: bool = False) -> dict[str, dict]:
    """Train ``config`` into ``out`` (``out/baseline`` and ``out/tcm`` with ``compare``).

    Returns each run's ``metrics.json`` dict by run name (empty on ranks other than 0).
    ``eval_last_only``: evaluate and save only after the last epoch (a quick retrain: the
    weights are the same, the history has one record and no earlier epoch can be resumed).
    """
    session = Session.open(config, callback or Callback(), eval_last_only)
    initial = InitialWeights(session)  # seeded before any run, so both runs start alike
    results = {}
    for i, (name, cfg, run_dir) in enumerate(_plan(session.config, Path(out), compare)):
        objective = initial.objective(cfg)
        # a pair stopped during its baseline has no +TCM checkpoint yet: that run starts fresh
        again = resume and (i == 0 or (run_dir / runs.CHECKPOINT).is_file())
        results[name] = RunTrainer(session, name, cfg, run_dir, objective).fit(resume=again)
    return results


def _plan(config: TrainConfig, out: Path, compare: bool) -> list[tuple[str, TrainConfig, Path]]:
    """(run name, its config, its folder) for each run, baseline first in a pair."""
    if compare:
        return [("baseline", config.replace(tcm=False), out / "baseline"),
                ("tcm", config.replace(tcm=True), out / "tcm")]
    return [("tcm" if config.tcm else "baseline", config, out)]


@dataclass(frozen=True, eq=False)
class Session:
    """What every run of one ``train`` call shares: the prepared data (``prepared.config`` has
    the data-dependent defaults filled in), the device, this process's DDP rank and world
    size, the callback, and whether only the last epoch is evaluated."""

    prepared: Prepared
    device: torch.device
    rank: int
    world: int
    callback: Callback
    eval_last_only: bool = False

    @classmethod
    def open(cls, config: TrainConfig, callback: Callback, eval_last_only: bool) -> Session:
        """Join the process group (if launched by torchrun) and prepare the data once."""
        rank, world, device = ddp.init(resolve_device(config.device))
        return cls(prepare(config, device, callback), device, rank, world, callback, eval_last_only)

    @property
    def config(self) -> TrainConfig:
        return self.prepared.config


class InitialWeights:
    """One initial state (model and base-loss weights) for every run of a plan, drawn once
    from ``config.seed``, so a pair's runs differ by TCM alone."""

    def __init__(self, session: Session):
        self.prepared = session.prepared
        config, splits = session.config, session.prepared.splits
        torch.manual_seed(config.seed)
        self.model = build_model(config, splits, self.prepared.backbone)
        loss = build_loss(config.replace(tcm=False), splits)
        self.model_state = copy.deepcopy(self.model.state_dict())
        self.loss_state = copy.deepcopy(loss.base.state_dict())

    def objective(self, config: TrainConfig) -> Objective:
        """The run's objective, reset to the initial weights (the model object is reused)."""
        self.model.load_state_dict(self.model_state)
        loss = build_loss(config, self.prepared.splits)
        loss.base.load_state_dict(self.loss_state)
        return Objective(self.model, loss, self.prepared.features)


class RunTrainer:
    """One run: its name, config, folder, objective, optimizer, LR schedule, batch sampler and
    history of ``EpochRecord``s, with the shared session's data, device and callback.

    ``fit`` trains from ``start_epoch`` to ``config.epochs``; each epoch is ``train_epoch``
    (one pass of optimizer steps) and, unless skipped, ``evaluate`` and ``save_epoch``.
    """

    def __init__(self, session: Session, name: str, config: TrainConfig, run_dir: Path,
                 objective: Objective):
        self.name, self.config, self.run_dir = name, config, Path(run_dir)
        self.prepared, self.device, self.callback = session.prepared, session.device, session.callback
        self.rank, self.world, self.eval_last_only = session.rank, session.world, session.eval_last_only
        self.objective = self._place(objective)
        self.optimizer = _optimizer(self.objective, config)
        self.sampler = _sampler(config, self.prepared, self.rank, self.world)
        self.history: list[EpochRecord] = []
        self.start_epoch = 0
        self.schedule = self.wrapped = None  # set by _begin, once the start epoch is known
        self.started = 0.0

    def _place(self, objective: Objective) -> Objective:
        objective = objective.to(self.device)
        if self.device.type == "cuda" and not self.prepared.features:
            objective = objective.to(memory_format=torch.channels_last)
        return objective

    def fit(self, resume: bool = False) -> dict:
        """Train the remaining epochs; returns the run's ``metrics.json`` dict (rank 0)."""
        self._begin(resume)
        for epoch in range(self.start_epoch, self.config.epochs):
            self.run_epoch(epoch)
        metrics = runs.load_metrics(self.run_dir) if self.rank == 0 else {}
        self.callback.on_run_end(self.name, metrics)
        return metrics

    def _begin(self, resume: bool) -> None:
        if resume:
            self.load_checkpoint()
        steps = len(self.sampler)
        self.schedule = _schedule(self.optimizer, self.config.epochs * steps,
                                  done=self.start_epoch * steps)
        if self.rank == 0:
            runs.save_config(self.run_dir, self.config)
        self.wrapped = (self.objective if self.world == 1
                        else nn.parallel.DistributedDataParallel(self.objective))
        self.callback.on_run_start(self.name, self.config.epochs, steps, self.start_epoch)
        self.started = time.perf_counter()

    def load_checkpoint(self) -> None:
        """Continue from the run's checkpoint; its history holds plain dicts (any version)."""
        state = runs.load_checkpoint(self.run_dir)
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = [EpochRecord.from_dict(r) for r in state["history"]]
        self.start_epoch = int(state["epoch"])

    def run_epoch(self, epoch: int) -> None:
        """Train one epoch, then (unless ``eval_last_only`` skips it) evaluate and save it."""
        t0 = time.perf_counter()
        losses = self.train_epoch(epoch)
        if self.eval_last_only and epoch + 1 < self.config.epochs:
            return
        embeddings = self.embed("test")  # every rank embeds its share
        val = self.embed("val") if self.prepared.val_inputs is not None else None
        if self.rank == 0:
            record = self.evaluate(epoch, losses, embeddings, val, t0)
            self.callback.on_epoch_end(self.name, record)
        ddp.barrier(self.world)

    def train_epoch(self, epoch: int) -> dict:
        """One pass over the sampler's batches; the mean losses and the number of steps."""
        self.sampler.set_epoch(epoch)
        torch.manual_seed(self.config.seed * 100_003 + epoch)  # same augmentations for both runs of a pair
        self.wrapped.train()
        totals, steps = np.zeros(3), len(self.sampler)
        for step, (x, y) in enumerate(_batches(self.sampler, self.prepared)):
            if self.callback.should_stop():
                raise TrainingStopped(f"{self.name} stopped during epoch {epoch + 1}")
            totals += self.train_step(x, y, epoch, step)
            self.callback.on_step(self.name, epoch, step + 1, steps, totals[0] / (step + 1))
        mean = totals / max(1, steps)
        return dict(loss=float(mean[0]), base_loss=float(mean[1]), tcm_loss=float(mean[2]), steps=steps)

    def train_step(self, x, y, epoch: int, step: int) -> list[float]:
        """One optimizer step; the (total, base, TCM) losses of the batch."""
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.device.type == "cuda" and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            terms = self.wrapped(x, y)
        if not torch.isfinite(terms.total.detach()):
            raise TrainingDiverged(
                f"{self.name}: the loss became {terms.total.item()} at epoch {epoch + 1}, step {step + 1}; "
                f"the last good checkpoint is kept in {self.run_dir} (try a lower --lr)")
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.optimizer.step()
        self.schedule.step()
        return [terms.total.detach().item(), terms.base.detach().item(), float(terms.tcm.detach())]

    def _autocast(self):
        """bfloat16 autocast on CUDA (tensor cores); full precision elsewhere."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def embed(self, split: str) -> torch.Tensor:
        """``split`` ("test" or "val") embeddings ``(n, D)`` on the CPU; with DDP each rank
        embeds a share."""
        self.objective.eval()
        inputs = self.prepared.test_inputs if split == "test" else self.prepared.val_inputs
        rank = torch.distributed.get_rank() if self.world > 1 else 0
        share = np.array_split(np.arange(len(inputs)), self.world)[rank]
        out = []
        for chunk in np.array_split(share, max(1, int(np.ceil(len(share) / 256)))):
            if self.prepared.features:
                x = inputs[chunk]
            else:
                x = torch.stack([inputs[int(i)][0] for i in chunk])
            out.append(self.objective.embed(x.to(self.device)).float())
        return ddp.gather_rows(torch.cat(out), self.world).cpu()

    def evaluate(self, epoch: int, losses: dict, embeddings: torch.Tensor, val: torch.Tensor | None,
                 t0: float) -> EpochRecord:
        """Measure the epoch on the test (and validation) split, append its record and save the
        run (rank 0)."""
        splits = self.prepared.splits
        labels = np.asarray(splits.test_classes)[splits.test_labels]
        ev = evaluate(embeddings.numpy(), labels, self.config.eval)
        val_ev = None if val is None else evaluate(
            val.numpy(), np.asarray(splits.val_classes)[splits.val_labels], self.config.eval)
        scores = {} if val_ev is None else dict(
            val_recall_at_1=val_ev.recall_at_1, val_map_at_r=val_ev.map_at_r, val_opis=val_ev.opis,
            val_eps_opis=val_ev.eps_opis)
        record = EpochRecord(epoch=epoch + 1, **losses, recall_at_1=ev.recall_at_1,
                             map_at_r=ev.map_at_r, opis=ev.opis, eps_opis=ev.eps_opis,
                             t_min=ev.t_min, t_max=ev.t_max, seconds=time.perf_counter() - t0, **scores)
        self.history.append(record)
        if val is not None:  # before metrics.json, which says the epoch is complete
            runs.save_run_embeddings(self.run_dir, val.numpy(), np.asarray(splits.val_classes)[splits.val_labels], "val")
        self.save_epoch(embeddings, labels, ev, val_ev)
        return record

    def save_epoch(self, embeddings: torch.Tensor, labels: np.ndarray, ev: Evaluation,
                   val_ev: Evaluation | None = None) -> None:
        """Checkpoint, embeddings and ``metrics.json`` of the last epoch, each written atomically.
        Histories are stored as plain dicts, so the files need no class to be read back."""
        seconds = time.perf_counter() - self.started
        history, done = [r.to_dict() for r in self.history], self.history[-1].epoch
        runs.save_checkpoint(self.run_dir, dict(objective=self.objective.state_dict(),
                                                optimizer=self.optimizer.state_dict(),
                                                history=history, epoch=done))
        runs.save_run_embeddings(self.run_dir, embeddings.numpy(), labels)
        final = ev.to_dict()
        cfg = self.config
        final.update(epochs_done=done, epochs=cfg.epochs, device=describe_device(self.device),
                     train_seconds=seconds, tcm=cfg.tcm, loss=cfg.loss, dataset=cfg.dataset,
                     validation=None if val_ev is None else val_ev.to_dict(), history=history)
        runs.save_metrics(self.run_dir, final)


LOSS_LR_FACTOR = 10.0  # class proxies/weights (ArcFace, ProxyAnchor) learn faster than the net


def _optimizer(objective: Objective, cfg: TrainConfig) -> torch.optim.Optimizer:
    model = [p for p in objective.model.parameters() if p.requires_grad]
    loss = [p for p in objective.loss.parameters() if p.requires_grad]
    groups = [dict(params=model)] + ([dict(params=loss, lr=cfg.lr * LOSS_LR_FACTOR)] if loss else [])
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


WARMUP = 0.05  # share of all steps with a linear warm-up, then cosine decay to zero


def _schedule(opt, total_steps: int, done: int = 0):
    """Warm-up then cosine decay over the whole run; ``done`` steps already taken (resume)."""
    warm = max(1, int(WARMUP * total_steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total_steps - warm))))

    for group in opt.param_groups:
        group.setdefault("initial_lr", group["lr"])
    return torch.optim.lr_scheduler.LambdaLR(opt, factor, last_epoch=done - 1)


def _sampler(cfg: TrainConfig, prepared: Prepared, rank: int, world: int) -> ClassBalancedBatchSampler:
    """P x K batches: P classes (at least 2) of K samples each, about ``cfg.batch_size`` in all."""
    n_classes = len(np.unique(prepared.splits.train_labels))
    p = max(2, min(n_classes, cfg.batch_size // cfg.samples_per_class))
    k = max(cfg.samples_per_class, cfg.batch_size // p)
    return ClassBalancedBatchSampler(prepared.splits.train_labels, p, k, seed=cfg.seed,
                                     num_replicas=world, rank=rank)


def _batches(sampler, prepared: Prepared):
    """(inputs, labels) batches: cached features indexed directly, images through a DataLoader."""
    labels = labels_tensor(prepared.splits.train_labels)
    if prepared.features:
        for idx in sampler:
            yield prepared.train_inputs[idx], labels[idx]
        return
    loader = torch.utils.data.DataLoader(prepared.train_inputs, batch_sampler=sampler,
                                         num_workers=0 if prepared.splits.kind == "small" else 2)
    yield from loader
