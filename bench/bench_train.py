"""Benchmark: training throughput through our trainer against a plain PyTorch loop on the same
device, same model, same batches, measured in the same run.

- CPU: the MNIST ArcFace toy (small CNN, 3-D embeddings, ArcFace +TCM, batch 16): steps/s.
- GPU (when CUDA is available): ResNet-50 at 224 px, batch 64, multi-similarity +TCM,
  bf16 autocast and channels_last: images/s. Goal: ours >= 0.9 x the plain loop, a textbook
  loop whose DataLoader has 8 workers and pinned memory (non-blocking copies). Ours keeps the
  in-memory images on the GPU and reads the losses back every 25 steps; without CUDA the GPU
  case prints "unmeasured (no CUDA)".

    .venv/bin/python bench/bench_train.py
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tcm_core.data import DataSplits  # noqa: E402
from tcm_core.training import Callback, TrainConfig  # noqa: E402
from tcm_core.training import engine  # noqa: E402
from tcm_core.training.setup import Prepared, build_loss, build_model  # noqa: E402


def synthetic_splits(n, classes, shape, kind) -> DataSplits:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    images = torch.randn(n, *shape, generator=g)
    data = torch.utils.data.TensorDataset(images, labels)
    names = tuple(str(c) for c in range(classes))
    return DataSplits("synthetic", kind, data, data, labels.numpy(), labels.numpy(), names, names,
                      shape[0], shape[-1], f"synthetic-{n}-{shape}")


def ours(cfg, splits, device, steps):
    """Steps/s of ``engine.RunTrainer.train_epoch`` (the trainer's loop, callbacks and all)."""
    prepared = Prepared(cfg, splits, cfg.backbone, splits.train, splits.test, features=False)
    torch.manual_seed(0)
    objective = engine.Objective(build_model(cfg, splits, cfg.backbone), build_loss(cfg, splits), False)
    session = engine.Session(prepared, device, rank=0, world=1, callback=Callback())
    trainer = engine.RunTrainer(session, "bench", cfg, Path("."), objective)
    sampler = trainer.sampler
    trainer.schedule = engine._schedule(trainer.optimizer, 10 * len(sampler))
    trainer.wrapped = trainer.objective
    trainer.sampler = _Limit(sampler, 3)
    trainer.train_epoch(0)  # warm-up
    _sync(device)
    trainer.sampler = _Limit(sampler, steps)
    t = time.perf_counter()
    trainer.train_epoch(1)
    _sync(device)
    return steps / (time.perf_counter() - t)


def plain(cfg, splits, device, steps):
    """Steps/s of a textbook loop: same model, loss, optimizer and batches; nothing else."""
    torch.manual_seed(0)
    model = build_model(cfg, splits, cfg.backbone).to(device)
    loss_fn = build_loss(cfg, splits).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(list(model.parameters()) + list(loss_fn.parameters()), lr=cfg.lr)
    prepared = Prepared(cfg, splits, cfg.backbone, splits.train, splits.test, features=False)
    gpu = dict(num_workers=8, pin_memory=True, persistent_workers=True) if device.type == "cuda" else {}
    loader = torch.utils.data.DataLoader(splits.train, batch_sampler=engine._sampler(cfg, prepared, 0, 1), **gpu)

    def run(n):
        model.train()
        for i, (x, y) in enumerate(loader):
            if i == n:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                terms = loss_fn(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            terms.total.backward()
            opt.step()

    run(3)
    _sync(device)
    t = time.perf_counter()
    run(steps)
    _sync(device)
    return steps / (time.perf_counter() - t)


class _Limit:
    """The first ``n`` batches of a sampler (with its set_epoch and len)."""

    def __init__(self, sampler, n):
        self.sampler, self.n = sampler, n

    def set_epoch(self, epoch):
        self.sampler.set_epoch(epoch)

    def __len__(self):
        return min(self.n, len(self.sampler))

    def __iter__(self):
        for i, b in enumerate(self.sampler):
            if i == self.n:
                return
            yield b


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    warnings.filterwarnings("ignore")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    cpu = torch.device("cpu")
    cfg = TrainConfig(backbone="small_cnn", embedding_dim=3, tcm=True, device="cpu")
    splits = synthetic_splits(5000, 10, (1, 28, 28), "small")
    a, b = ours(cfg, splits, cpu, 150), plain(cfg, splits, cpu, 150)
    print(f"CPU  MNIST toy (batch {cfg.batch_size}): ours {a:.1f} steps/s, plain loop {b:.1f} steps/s, ratio {a / b:.2f}")
    if not torch.cuda.is_available():
        print("GPU  ResNet-50 224px (batch 64, bf16): unmeasured (no CUDA); goal ours >= 0.9 x plain loop")
        return
    gpu = torch.device("cuda")
    cfg = TrainConfig(backbone="resnet50", embedding_dim=128, loss="multi_similarity", tcm=True,
                      batch_size=64, samples_per_class=4, device="cuda")
    splits = synthetic_splits(4096, 64, (3, 224, 224), "image")
    a, b = ours(cfg, splits, gpu, 40), plain(cfg, splits, gpu, 40)
    name = torch.cuda.get_device_name(gpu)
    print(f"GPU  ResNet-50 224px (batch 64, bf16, {name}): ours {a * 64:.0f} img/s, plain loop {b * 64:.0f} img/s, "
          f"ratio {a / b:.2f} (goal >= 0.9)")


if __name__ == "__main__":
    main()
