"""The training loop shared by ``python -m tcm_core train`` and the app.

``train(config, out)`` trains one run, or with ``compare=True`` the baseline and the +TCM run
as a pair from identical initial weights and identical batch order, so that the difference
is TCM alone. After each epoch it evaluates R@1, OPIS and eps-OPIS on the test split, writes
``metrics.json``, ``embeddings.npz`` and a checkpoint (atomically), and reports to callbacks.
"""

from __future__ import annotations

import contextlib
import math
import copy
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tcm_core.data import ClassBalancedBatchSampler
from tcm_core.device import describe_device, resolve_device
from tcm_core.errors import TCMError
from tcm_core.evaluate import evaluate
from tcm_core.training import distributed as ddp
from tcm_core.training import runs
from tcm_core.training.callbacks import Callback, TrainingStopped
from tcm_core.training.config import TrainConfig
from tcm_core.training.setup import Prepared, build_loss, build_model, labels_tensor, prepare


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

    ``eval_last_only``: evaluate and save only after the last epoch (a quick retrain: the
    weights are the same, the history has one record and no earlier epoch can be resumed).
    """
    callback = callback or Callback()
    out = Path(out)
    rank, world, device = ddp.init(resolve_device(config.device))
    prepared = prepare(config, device, callback)
    config = prepared.config
    plan = [("baseline", config.replace(tcm=False), out / "baseline"),
            ("tcm", config.replace(tcm=True), out / "tcm")] if compare else [
            ("tcm" if config.tcm else "baseline", config, out)]
    torch.manual_seed(config.seed)  # one initial state for every run of the plan
    model = build_model(config, prepared.splits, prepared.backbone)
    loss = build_loss(config.replace(tcm=False), prepared.splits)
    initial = (copy.deepcopy(model.state_dict()), copy.deepcopy(loss.base.state_dict()))
    results = {}
    for i, (name, cfg, run_dir) in enumerate(plan):
        model.load_state_dict(initial[0])
        run_loss = build_loss(cfg, prepared.splits)
        run_loss.base.load_state_dict(initial[1])
        # a pair stopped during its baseline has no +TCM checkpoint yet: that run starts fresh
        again = resume and (i == 0 or (run_dir / runs.CHECKPOINT).is_file())
        results[name] = _train_run(name, cfg, run_dir, prepared, model, run_loss, device,
                                   rank, world, again, callback, eval_last_only)
    return results


def _train_run(name, cfg, run_dir, prepared: Prepared, model, loss, device, rank, world,
               resume, callback, eval_last_only: bool = False) -> dict:
    objective = Objective(model, loss, prepared.features).to(device)
    if device.type == "cuda" and not prepared.features:
        objective = objective.to(memory_format=torch.channels_last)
    opt = _optimizer(objective, cfg)
    sampler = _sampler(cfg, prepared, rank, world)
    history, start = [], 0
    if resume:
        state = runs.load_checkpoint(run_dir)
        objective.load_state_dict(state["objective"])
        opt.load_state_dict(state["optimizer"])
        history, start = list(state["history"]), int(state["epoch"])
    schedule = _schedule(opt, cfg.epochs * len(sampler), done=start * len(sampler))
    if rank == 0:
        runs.save_config(run_dir, cfg)
    wrapped = objective if world == 1 else nn.parallel.DistributedDataParallel(objective)
    callback.on_run_start(name, cfg.epochs, len(sampler), start)
    started = time.perf_counter()
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        sums = _train_epoch(name, epoch, wrapped, opt, schedule, sampler, prepared, device, cfg,
                            callback, run_dir)
        if eval_last_only and epoch + 1 < cfg.epochs:
            continue
        embeddings = _embed_test(objective, prepared, device, world)
        if rank == 0:
            labels = np.asarray(prepared.splits.test_classes)[prepared.splits.test_labels]
            ev = evaluate(embeddings.numpy(), labels, cfg.eval_settings())
            record = dict(epoch=epoch + 1, **sums, recall_at_1=ev.recall_at_1, map_at_r=ev.map_at_r,
                          opis=ev.opis, eps_opis=ev.eps_opis, t_min=ev.t_min, t_max=ev.t_max,
                          seconds=time.perf_counter() - t0)
            history.append(record)
            _save_epoch(run_dir, objective, opt, history, embeddings, labels, ev, cfg, device,
                        time.perf_counter() - started)
            callback.on_epoch_end(name, record)
        ddp.barrier(world)
    metrics = runs.load_metrics(run_dir) if rank == 0 else {}
    callback.on_run_end(name, metrics)
    return metrics


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
    n_classes = len(np.unique(prepared.splits.train_labels))
    p = max(2, min(n_classes, cfg.batch_size // cfg.samples_per_class))
    k = max(cfg.samples_per_class, cfg.batch_size // p)
    return ClassBalancedBatchSampler(prepared.splits.train_labels, p, k, seed=cfg.seed,
                                     num_replicas=world, rank=rank)


def _batches(sampler, prepared: Prepared):
    labels = labels_tensor(prepared.splits.train_labels)
    if prepared.features:
        for idx in sampler:
            yield prepared.train_inputs[idx], labels[idx]
        return
    loader = torch.utils.data.DataLoader(prepared.train_inputs, batch_sampler=sampler,
                                         num_workers=0 if prepared.splits.kind == "small" else 2)
    yield from loader


def _train_epoch(name, epoch, wrapped, opt, schedule, sampler, prepared, device, cfg, callback,
                 run_dir) -> dict:
    sampler.set_epoch(epoch)
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # same augmentations for both runs of a pair
    wrapped.train()
    totals, steps = np.zeros(3), len(sampler)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())
    for step, (x, y) in enumerate(_batches(sampler, prepared)):
        if callback.should_stop():
            raise TrainingStopped(f"{name} stopped during epoch {epoch + 1}")
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if device.type == "cuda" and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            terms = wrapped(x, y)
        if not torch.isfinite(terms.total.detach()):
            raise TrainingDiverged(
                f"{name}: the loss became {terms.total.item()} at epoch {epoch + 1}, step {step + 1}; "
                f"the last good checkpoint is kept in {run_dir} (try a lower --lr)")
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        opt.step()
        schedule.step()
        totals += [terms.total.detach().item(), terms.base.detach().item(), float(terms.tcm.detach())]
        callback.on_step(name, epoch, step + 1, steps, totals[0] / (step + 1))
    mean = totals / max(1, steps)
    return dict(loss=float(mean[0]), base_loss=float(mean[1]), tcm_loss=float(mean[2]), steps=steps)


@torch.no_grad()
def _embed_test(objective: Objective, prepared: Prepared, device, world: int) -> torch.Tensor:
    """Test embeddings ``(n_test, D)`` on the CPU; with DDP each rank embeds a share."""
    objective.eval()
    rank = torch.distributed.get_rank() if world > 1 else 0
    n = len(prepared.splits.test_labels)
    share = np.array_split(np.arange(n), world)[rank]
    out = []
    for chunk in np.array_split(share, max(1, int(np.ceil(len(share) / 256)))):
        if prepared.features:
            x = prepared.test_inputs[chunk]
        else:
            x = torch.stack([prepared.test_inputs[int(i)][0] for i in chunk])
        out.append(objective.embed(x.to(device)).float())
    return ddp.gather_rows(torch.cat(out), world).cpu()


def _save_epoch(run_dir, objective, opt, history, embeddings, labels, ev, cfg, device, seconds):
    run_dir = Path(run_dir)
    runs.save_checkpoint(run_dir, dict(objective=objective.state_dict(), optimizer=opt.state_dict(),
                                       history=history, epoch=history[-1]["epoch"]))
    runs.save_run_embeddings(run_dir, embeddings.numpy(), labels)
    final = ev.to_dict()
    final.update(epochs_done=history[-1]["epoch"], epochs=cfg.epochs, device=describe_device(device),
                 train_seconds=seconds, tcm=cfg.tcm, loss=cfg.loss, dataset=cfg.dataset,
                 history=history)
    runs.save_metrics(run_dir, final)
