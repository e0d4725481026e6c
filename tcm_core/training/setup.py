"""Everything a run needs before its first step: data, the model, the loss, and (in the
frozen-backbone mode) the cached backbone features of both splits."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tcm_core.data import DataSplits, dataset_kind, default_test_transform, load_dataset
from tcm_core.losses import MetricLoss, create_loss, loss_needs_classes
from tcm_core.losses.spread import spread_class_weights
from tcm_core.models import EmbeddingModel, cached_features, create_model, weights_id
from tcm_core.training.callbacks import Callback
from tcm_core.training.config import TrainConfig

DEFAULT_BACKBONE = {"small": "small_cnn", "image": "mobilenet_v2"}
DEFAULT_EMBEDDING_DIM = {"small": 3, "image": 128}


@dataclass
class Prepared:
    """Data and inputs for training; ``train_inputs`` are cached features or a Dataset;
    ``config`` has its data-dependent defaults (embedding size) filled in."""

    config: TrainConfig
    splits: DataSplits
    backbone: str
    train_inputs: object
    test_inputs: object
    features: bool
    val_inputs: object = None  # None when the data has no validation split


def load_data(config: TrainConfig) -> DataSplits:
    frozen = config.freeze_backbone
    return load_dataset(
        config.dataset, config.data_dir, max_classes=config.max_classes,
        max_per_class=config.max_per_class, max_train_samples=config.max_train_samples,
        max_test_samples=config.max_test_samples, seed=config.seed, image_size=config.image_size,
        # cached features must not freeze one random augmentation: use the test transform
        train_transform=default_test_transform(config.image_size) if frozen and not _small(config) else None,
    )


def _small(config: TrainConfig) -> bool:
    return dataset_kind(config.dataset) == "small"


LOW_DIM = 16  # embeddings this small get a hidden head layer (R@1 0.80 -> 0.88 on the toy)


def build_model(config: TrainConfig, splits: DataSplits, backbone: str) -> EmbeddingModel:
    hidden = 64 if config.embedding_dim <= LOW_DIM else None
    return create_model(backbone, embedding_dim=config.embedding_dim, weights=config.weights,
                        in_channels=splits.in_channels, freeze_backbone=config.freeze_backbone,
                        head_hidden=hidden)


# ArcFace's usual scale 64 and margin 0.5 rad are made for 128-512 dimensions; on the
# 3-D sphere of the toy they leave classes overlapping after a short run.
LOW_DIM_ARCFACE = {"margin_rad": 0.2, "scale": 16.0}


def loss_options(config: TrainConfig) -> dict:
    if config.loss_options is not None:
        return dict(config.loss_options)
    return dict(LOW_DIM_ARCFACE) if config.loss == "arcface" and config.embedding_dim <= 3 else {}


def build_loss(config: TrainConfig, splits: DataSplits) -> MetricLoss:
    """Base loss (+TCM when ``config.tcm``); class weights start well spread (``spread``)."""
    n_classes = int(len(splits.train_classes))
    kwargs = dict(num_classes=n_classes, embedding_dim=config.embedding_dim) if loss_needs_classes(config.loss) else {}
    loss = create_loss(config.loss, tcm=config.tcm, margin_pos=config.margin_pos,
                       margin_neg=config.margin_neg, lambda_pos=config.lambda_pos,
                       lambda_neg=config.lambda_neg, **kwargs, **loss_options(config))
    spread_class_weights(loss, seed=config.seed)
    return loss


def prepare(config: TrainConfig, device: torch.device, callback: Callback) -> Prepared:
    callback.on_stage(f"loading {config.dataset}")
    splits = load_data(config)
    if splits.note:
        callback.on_stage(splits.note)
    backbone = config.backbone or DEFAULT_BACKBONE[splits.kind]
    if config.embedding_dim is None:
        config = config.replace(embedding_dim=DEFAULT_EMBEDDING_DIM[splits.kind])
    if not config.freeze_backbone:
        return Prepared(config, splits, backbone, splits.train, splits.test, features=False,
                        val_inputs=splits.val if splits.has_val else None)
    torch.manual_seed(config.seed)
    model = build_model(config, splits, backbone)
    feats = []
    named = [("train", splits.train), ("test", splits.test)] + ([("val", splits.val)] if splits.has_val else [])
    for split, dataset in named:
        key = dict(dataset=splits.identity, split=split, backbone=backbone,
                   weights=weights_id(config.weights), image_size=config.image_size)
        progress = lambda done, total, s=split: callback.on_stage(f"backbone features ({s})", done, total)  # noqa: E731
        feats.append(cached_features(model.backbone, dataset, key_parts=key, device=device, progress=progress))
    feats = [f.to(device) for f in feats]  # on a GPU: copied once, no copy per step
    return Prepared(config, splits, backbone, feats[0], feats[1], features=True,
                    val_inputs=feats[2] if splits.has_val else None)

