"""``python -m tcm_core train``: the headless trainer, with a progress bar per run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.training.callbacks import Callback
from tcm_core.training.records import EpochRecord


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train an embedding model (a base loss, optionally +TCM)",
                       description="Defaults train the MNIST ArcFace toy (3-D embeddings).")
    add_config_options(p)
    p.add_argument("--compare", action="store_true", help="train baseline and +TCM as a pair into OUT/baseline and OUT/tcm")
    p.add_argument("--out", help="run folder (default runs/<time>-<dataset>-<loss>)")
    p.add_argument("--seeds", type=int, nargs="+", metavar="N",
                   help="with --compare: one pair per seed into OUT/seed-<n>, then OUT/summary.json "
                        "(mean change and 95%% interval across seeds)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out up to --epochs")
    p.set_defaults(func=run_train)


def add_config_options(p, *, per_run: bool = True) -> None:
    """The ``TrainConfig`` options (data, model, loss, TCM, optimization) in ``train``'s order.
    ``per_run=False`` leaves out the four that a study varies or sets per run (``--loss``,
    ``--tcm``, ``--batch-size``, ``--seed``)."""
    from tcm_core.data import DATASETS
    from tcm_core.losses import BASE_LOSSES
    from tcm_core.models import BACKBONES
    from tcm_core.training.config import TrainConfig

    d = TrainConfig()
    p.add_argument("--dataset", choices=list(DATASETS), default=d.dataset)
    p.add_argument("--data-dir", help="data root (else $TCM_DATA_DIR, else a per-user cache folder); "
                   "for --dataset folder: the folder of class folders")
    p.add_argument("--backbone", choices=sorted(BACKBONES), help="default: small_cnn for small images, mobilenet_v2 for photos")
    p.add_argument("--weights", help="torchvision weight name (e.g. DEFAULT) or a local .pth state-dict file")
    p.add_argument("--freeze-backbone", action="store_true", help="train only the head on cached backbone features")
    p.add_argument("--embedding-dim", type=int, default=d.embedding_dim,
                   help="default: 3 for mnist/fashion-mnist/digits (drawable on the sphere), 128 otherwise")
    if per_run:
        p.add_argument("--loss", choices=sorted(BASE_LOSSES), default=d.loss)
    p.add_argument("--loss-option", action="append", default=[], metavar="KEY=VALUE",
                   help="base-loss option, repeatable (e.g. margin_rad=0.3 scale=32 for arcface)")
    if per_run:
        p.add_argument("--tcm", action=argparse.BooleanOptionalAction, default=d.tcm, help="add the TCM regularizer")
    p.add_argument("--margin-pos", type=float, default=d.margin_pos, help="TCM m+ (cosine similarity)")
    p.add_argument("--margin-neg", type=float, default=d.margin_neg, help="TCM m- (cosine similarity)")
    p.add_argument("--lambda-pos", type=float, default=d.lambda_pos, help="TCM lambda+")
    p.add_argument("--lambda-neg", type=float, default=d.lambda_neg, help="TCM lambda-")
    p.add_argument("--epochs", type=int, default=d.epochs)
    if per_run:
        p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--samples-per-class", type=int, default=d.samples_per_class, help="K of the P x K batches")
    p.add_argument("--lr", type=float, default=d.lr)
    if per_run:
        p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto, cuda, mps or cpu")
    p.add_argument("--max-train-samples", type=int)
    p.add_argument("--max-test-samples", type=int)
    p.add_argument("--max-classes", type=int)
    p.add_argument("--max-per-class", type=int)
    p.add_argument("--image-size", type=int, default=d.image_size)


def config_from_args(args):
    from tcm_core.training.config import TrainConfig

    return TrainConfig(
        dataset=args.dataset, data_dir=args.data_dir, backbone=args.backbone, weights=args.weights,
        freeze_backbone=args.freeze_backbone, embedding_dim=args.embedding_dim, loss=args.loss,
        tcm=args.tcm, margin_pos=args.margin_pos, margin_neg=args.margin_neg,
        lambda_pos=args.lambda_pos, lambda_neg=args.lambda_neg, epochs=args.epochs,
        batch_size=args.batch_size, samples_per_class=args.samples_per_class, lr=args.lr,
        seed=args.seed, device=args.device, max_train_samples=args.max_train_samples,
        max_test_samples=args.max_test_samples, max_classes=args.max_classes,
        max_per_class=args.max_per_class, image_size=args.image_size,
        loss_options=_loss_options(args.loss_option))


def _loss_options(items):
    if not items:
        return None
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TCMError(f"--loss-option takes KEY=VALUE; got {item!r}")
        try:
            options[key] = float(value) if any(c in value for c in ".e") else int(value)
        except ValueError:
            options[key] = value
    return options


def _resume_config(args, config):
    """On --resume, the saved config wins except for the number of epochs."""
    from tcm_core.training import runs

    if not args.out:
        raise TCMError("--resume needs --out pointing at the run (or comparison) folder to continue")
    first = Path(args.out) / "baseline" if args.compare else Path(args.out)
    if args.seeds:
        first = Path(args.out) / f"seed-{args.seeds[0]}" / "baseline"
    return runs.load_config(first).replace(epochs=config.epochs, tcm=config.tcm if not args.compare else False)


def run_train(args) -> int:
    from tcm_core.training import distributed as ddp
    from tcm_core.training import runs
    from tcm_core.training.engine import train
    from tcm_core.training.repeats import SUMMARY, format_summary, train_repeats

    config = config_from_args(args)
    if args.resume:
        config = _resume_config(args, config)
    if args.seeds and not args.compare:
        raise TCMError("--seeds trains one baseline / +TCM pair per seed: add --compare")
    out = Path(args.out) if args.out else runs.new_run_dir("runs", config.dataset, config.loss)
    bars = ProgressBars(enabled=int(__import__("os").environ.get("RANK", "0")) == 0)
    try:
        if args.seeds:
            summary = train_repeats(config, out, args.seeds, resume=args.resume, callback=bars)
        else:
            results = train(config, out, compare=args.compare, resume=args.resume, callback=bars)
    finally:
        bars.close()
        ddp.shutdown()
    if bars.enabled and args.seeds:
        print(format_summary(summary))
        print(f"saved to {out} ({SUMMARY})")
    elif bars.enabled:
        for name, m in results.items():
            print(f"{name:8s} R@1 {m['recall_at_1']:.4f}  OPIS {m['opis']:.6f}  "
                  f"{m['eps']:g}-OPIS {m['eps_opis']:.6f}  ({m['epochs_done']} epochs)")
        print(f"saved to {out}")
    return 0


class ProgressBars(Callback):
    """tqdm bars driven by the trainer's callbacks (stderr, so stdout stays parseable): one
    for a preparation stage with a known total, one per run over all its remaining steps.
    ``enabled=False`` (DDP ranks other than 0) draws nothing, so only one process prints."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar = self._stage = None

    def on_stage(self, text: str, done: int = 0, total: int = 0) -> None:
        if not self.enabled:
            return
        if total:
            from tqdm import tqdm

            if self._stage is None or self._stage.desc != text:
                self.close()
                self._stage = tqdm(total=total, desc=text, file=sys.stderr, leave=False)
            self._stage.n = done
            self._stage.refresh()
        else:
            print(text, file=sys.stderr)

    def on_run_start(self, run: str, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        if self.enabled:
            self.close()
            from tqdm import tqdm

            self.bar = tqdm(total=(epochs - start_epoch) * steps_per_epoch, desc=run, file=sys.stderr)

    def on_step(self, run: str, epoch: int, step: int, steps: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}")

    def on_epoch_end(self, run: str, record: EpochRecord) -> None:
        if self.bar is not None:
            self.bar.write(f"{run} epoch {record.epoch}: R@1 {record.recall_at_1:.4f}  "
                           f"OPIS {record.opis:.6f}  eps-OPIS {record.eps_opis:.6f}  "
                           f"loss {record.loss:.4f}", file=sys.stderr)

    def close(self) -> None:
        """Close any open bar (before the next one, and when training ends)."""
        for b in (self._stage, self.bar):
            if b is not None:
                b.close()
        self._stage = self.bar = None
