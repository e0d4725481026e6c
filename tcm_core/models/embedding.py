"""The embedding model: backbone features (B, F) -> head -> L2-normalized embeddings (B, D).

``embed_features`` runs the head alone, so a trainer can cache backbone features once
(``tcm_core.models.feature_cache``) and train only the head. With ``freeze_backbone`` the
backbone's parameters get no gradients and it stays in eval mode (BatchNorm statistics fixed)
even after ``model.train()``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from tcm_core.errors import TCMError
from tcm_core.models.backbones import create_backbone


class EmbeddingModel(nn.Module):
    """Images (B, C, H, W) -> unit-norm embeddings (B, embedding_dim)."""

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        embedding_dim: int,
        *,
        head_batchnorm: bool = False,
        head_hidden: int | None = None,
        freeze_backbone: bool = False,
        backbone_name: str = "custom",
    ):
        super().__init__()
        for arg, value in (("feature_dim", feature_dim), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TCMError(f"{arg} must be a positive integer; got {value!r}")
        self.backbone = backbone
        self.backbone_name = backbone_name
        self.feature_dim = feature_dim
        self.embedding_dim = embedding_dim
        layers: list[nn.Module] = [nn.Linear(feature_dim, embedding_dim)]
        if head_hidden:  # Linear-BN-ReLU-Linear: a few-dimensional embedding learns much faster
            layers = [nn.Linear(feature_dim, head_hidden), nn.BatchNorm1d(head_hidden),
                      nn.ReLU(inplace=True), nn.Linear(head_hidden, embedding_dim)]
        if head_batchnorm:  # needs batches of 2+ in train mode
            layers.append(nn.BatchNorm1d(embedding_dim))
        self.head = nn.Sequential(*layers)
        self.channels_last = False
        self.backbone_frozen = False
        self.set_backbone_frozen(freeze_backbone)

    def set_backbone_frozen(self, frozen: bool) -> None:
        """Freeze (no grads, eval mode) or unfreeze the backbone."""
        self.backbone_frozen = bool(frozen)
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(not self.backbone_frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> "EmbeddingModel":
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()  # keep BatchNorm running statistics fixed
        return self

    def embed_features(self, features: torch.Tensor) -> torch.Tensor:
        """Backbone features (B, F) -> unit-norm embeddings (B, D): head + L2 normalization."""
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise TCMError(
                f"features must have shape (B, {self.feature_dim}); got {tuple(features.shape)}"
            )
        return F.normalize(self.head(features), dim=1)  # (B, D)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last and images.ndim == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.backbone_frozen:
            with torch.no_grad():
                features = self.backbone(images)  # (B, F)
        else:
            features = self.backbone(images)  # (B, F)
        return self.embed_features(features)


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store 4-D weights channels-last (faster convs on CUDA and recent CPUs); returns ``model``.

    An ``EmbeddingModel`` also converts its input images to channels-last from then on.
    """
    model.to(memory_format=torch.channels_last)
    if isinstance(model, EmbeddingModel):
        model.channels_last = True
    return model


def create_model(
    backbone: str,
    *,
    embedding_dim: int,
    weights: str | os.PathLike | None = None,
    in_channels: int = 3,
    freeze_backbone: bool = False,
    head_batchnorm: bool = False,
    head_hidden: int | None = None,
    channels_last: bool = False,
) -> EmbeddingModel:
    """Registry backbone ``backbone`` + a Linear(F, embedding_dim) head, L2-normalized output."""
    module, feature_dim = create_backbone(backbone, weights=weights, in_channels=in_channels)
    model = EmbeddingModel(
        module,
        feature_dim,
        embedding_dim,
        head_batchnorm=head_batchnorm,
        head_hidden=head_hidden,
        freeze_backbone=freeze_backbone,
        backbone_name=backbone,
    )
    return to_channels_last(model) if channels_last else model
