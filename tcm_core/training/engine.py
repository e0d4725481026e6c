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
from tcm_core.metrics.evaluation import Evaluation, evaluate_embedding_set
from tcm_core.metrics.inputs import embedding_set
from tcm_core.metrics.retrieval import ClassHits, class_hits_from_set
from tcm_core.metrics.scores import RunScores
from tcm_core.metrics.utility import utility_curves_from_set
from tcm_core.training import distributed as ddp
from tcm_core.training import pair_threads, runs
from tcm_core.training.batches import TrainBatches, eval_chunks
from tcm_core.training.callbacks import Callback, TrainingStopped
from tcm_core.training.config import TrainConfig
from tcm_core.training.records import EpochRecord
from tcm_core.training.setup import Prepared, build_loss, build_model, prepare


def _channels_last(device: torch.device) -> bool:
    """Channels-last convolutions: on CUDA (tensor cores); on a CPU only with one torch thread,
    where oneDNN's channels-last kernels made the small CNN's steps 1.2-2x and its embedding
    2-3x faster (2-core machine); with two threads they collapsed there (10 against 90 steps/s)."""
    return device.type == "cuda" or (device.type == "cpu" and torch.get_num_threads() == 1)


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
          callback: Callback | None = None, eval_last_only: bool = False,
          side_by_side: bool = False, scores: dict | None = None) -> dict[str, dict]:
    """Train ``config`` into ``out`` (``out/baseline`` and ``out/tcm`` with ``compare``).

    Returns each run's ``metrics.json`` dict by run name (empty on ranks other than 0).
    ``eval_last_only``: evaluate and save only after the last epoch (a quick retrain: the
    weights are the same, the history has one record and no earlier epoch can be resumed).
    ``side_by_side``: train a pair's two runs at once, one per thread, where that gives the
    same bits as one after the other (``pair_threads.can_share``); else one after the other.
    ``scores``: a dict to receive each run's last evaluated ``SplitScores`` by run name and
    split (``{"tcm": {"test": ..., "val": ...}}``), so intervals need not recompute curves.
    """
    session = Session.open(config, callback or Callback(), eval_last_only)
    initial = InitialWeights(session)  # seeded before any run, so both runs start alike
    plan = _plan(session.config, Path(out), compare)
    if side_by_side and not resume and pair_threads.can_share(session, len(plan), initial.model):
        trainers = [RunTrainer(session, name, cfg, run_dir, initial.objective(cfg, own_model=True))
                    for name, cfg, run_dir in plan]
        results = dict(zip((t.name for t in trainers), pair_threads.fit_side_by_side(trainers)))
    else:
        results, trainers = {}, []
        for i, (name, cfg, run_dir) in enumerate(plan):
            trainers.append(RunTrainer(session, name, cfg, run_dir, initial.objective(cfg)))
            # a pair stopped during its baseline has no +TCM checkpoint yet: that run starts fresh
            again = resume and (i == 0 or (run_dir / runs.CHECKPOINT).is_file())
            results[name] = trainers[-1].fit(resume=again)
    if scores is not None:
        scores.update((t.name, t.scores) for t in trainers)
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

    def objective(self, config: TrainConfig, own_model: bool = False) -> Objective:
        """The run's objective, reset to the initial weights (the model object is reused unless
        ``own_model``: runs trained at the same time need one each)."""
        model = copy.deepcopy(self.model) if own_model else self.model
        model.load_state_dict(self.model_state)
        loss = build_loss(config, self.prepared.splits)
        loss.base.load_state_dict(self.loss_state)
        return Objective(model, loss, self.prepared.features)


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
        self.channels_last = _channels_last(self.device) and not self.prepared.features
        self.objective = self._place(objective)
        self.optimizer = _optimizer(self.objective, config)
        self.sampler = _sampler(config, self.prepared, self.rank, self.world)
        self.batches = TrainBatches(self.prepared.train_inputs, self.prepared.splits.train_labels,
                                    self.sampler, self.device, features=self.prepared.features,
                                    world=self.world)
        self.history: list[EpochRecord] = []
        self.scores: dict[str, SplitScores] = {}  # by split, of the last evaluated epoch
        self.start_epoch = 0
        self.schedule = self.wrapped = None  # set by _begin, once the start epoch is known
        self.started = 0.0

    def _place(self, objective: Objective) -> Objective:
        objective = objective.to(self.device)
        if self.channels_last:
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
        self.batches.sampler = self.sampler
        log = StepLosses(self, epoch, len(self.sampler))
        for step, (x, y) in enumerate(self.batches):
            if self.callback.should_stop():
                raise TrainingStopped(f"{self.name} stopped during epoch {epoch + 1}")
            log.add(self.train_step(x, y))
        return log.close()

    def train_step(self, x, y) -> torch.Tensor:
        """One optimizer step on a batch already on the device; its (total, base, TCM) losses
        as a tensor (3,) on the device (read back by ``StepLosses``, not here: no sync)."""
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            terms = self.wrapped(x, y)
        losses = torch.stack([t.detach().float().reshape(()) for t in (terms.total, terms.base, terms.tcm)])
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.optimizer.step()
        self.schedule.step()
        return losses

    def diverged(self, loss: float, epoch: int, step: int):
        """Raise ``TrainingDiverged``: ``loss`` at ``step`` (0-based) of ``epoch`` is not finite."""
        raise TrainingDiverged(
            f"{self.name}: the loss became {loss} at epoch {epoch + 1}, step {step + 1}; "
            f"the last good checkpoint is kept in {self.run_dir} (try a lower --lr)")

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
        for x in eval_chunks(inputs, share, self.device, features=self.prepared.features):
            if self.channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                out.append(self.objective.embed(x).float())
        return ddp.gather_rows(torch.cat(out), self.world).cpu()

    def evaluate(self, epoch: int, losses: dict, embeddings: torch.Tensor, val: torch.Tensor | None,
                 t0: float) -> EpochRecord:
        """Measure the epoch on the test (and validation) split, append its record and save the
        run (rank 0)."""
        splits = self.prepared.splits
        labels = np.asarray(splits.test_classes)[splits.test_labels]
        with torch_threads_kept():
            ev, self.scores["test"] = evaluate_split(embeddings.numpy(), labels, self.config.eval)
            val_ev = None
            if val is not None:
                val_labels = np.asarray(splits.val_classes)[splits.val_labels]
                val_ev, self.scores["val"] = evaluate_split(val.numpy(), val_labels, self.config.eval)
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


CUDA_READ_EVERY = 25  # steps between read-backs of the losses from a GPU (each one waits for it)


class StepLosses:
    """An epoch's per-step (total, base, TCM) losses, kept on the device and read back every
    step on a CPU, every ``CUDA_READ_EVERY`` steps on CUDA (a read-back stalls the GPU's queue):
    then each step's loss is checked to be finite and reported to ``on_step`` in order. A NaN
    found on a GPU stops the epoch a few steps late; nothing is saved from it either way."""

    def __init__(self, trainer: RunTrainer, epoch: int, steps: int):
        self.trainer, self.epoch, self.steps = trainer, epoch, steps
        self.every = CUDA_READ_EVERY if trainer.device.type == "cuda" else 1
        self.pending: list[torch.Tensor] = []
        self.totals, self.done = np.zeros(3), 0

    def add(self, losses: torch.Tensor) -> None:
        self.pending.append(losses)
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        rows = torch.stack(self.pending).cpu().numpy().astype(np.float64)  # (k, 3)
        self.pending = []
        trainer = self.trainer
        for row in rows:
            if not np.isfinite(row[0]):
                trainer.diverged(float(row[0]), self.epoch, self.done)
            self.totals += row
            self.done += 1
            trainer.callback.on_step(trainer.name, self.epoch, self.done, self.steps, self.totals[0] / self.done)

    def close(self) -> dict:
        """The epoch's mean losses and its number of steps."""
        self.flush()
        mean = self.totals / max(1, self.steps)
        return dict(loss=float(mean[0]), base_loss=float(mean[1]), tcm_loss=float(mean[2]), steps=self.steps)


@dataclass(frozen=True)
class SplitScores:
    """One run's per-class results on one split: what a paired bootstrap over the classes
    needs (``metrics.scores.bootstrap_pair_changes``), kept from the run's evaluation."""

    scores: RunScores
    hits: ClassHits


def evaluate_split(embeddings: np.ndarray, labels: np.ndarray, settings) -> tuple[Evaluation, SplitScores]:
    """``evaluate`` of one split, with the curves and R@1 hits behind it (computed once)."""
    es = embedding_set(embeddings, labels, normalize=settings.normalize)
    curves = utility_curves_from_set(es, **settings.curve_options)
    hits = class_hits_from_set(es)
    ev = evaluate_embedding_set(es, settings, curves, hits)
    return ev, SplitScores(RunScores(curves, ev.opis, ev.eps_opis), hits)


@contextlib.contextmanager
def torch_threads_kept():
    """Keep torch's CPU thread count across the metrics: their numba kernels (OpenMP) set the
    OpenMP thread count that torch reads too, so without this every run after the first
    evaluation would train with numba's threads, not the ones asked for (and differ in bits)."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


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

