"""The backbone registry: a name -> a module mapping images (B, C, H, W) to features (B, F).

Like timm's ``create_model``: ``create_backbone("resnet18", weights="DEFAULT")``. Torchvision
models have their classifier replaced by ``nn.Identity`` so they return pooled features
(resnet ``fc``, mobilenet_v2 ``classifier``, vit ``heads``). Weights are resolved by
``tcm_core.models.weights``. ``in_channels != 3`` replaces the first conv of a torchvision
model by one whose filters average the (possibly pretrained) RGB filters, as timm does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from tcm_core.errors import TCMError
from tcm_core.models.small_cnn import SmallCNN
from tcm_core.models.weights import (
    is_random,
    is_weight_file,
    load_backbone_state,
    read_state_dict,
    torchvision_weights,
)


@dataclass(frozen=True)
class BackboneSpec:
    """One registry entry. ``head``/``stem`` are attribute paths in the torchvision model."""

    name: str
    feature_dim: int
    input_size: int  # the image side the backbone expects (vit_b_16 needs exactly 224)
    description: str
    torchvision_name: str | None = None
    head: str | None = None
    stem: str | None = None


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("small_cnn", 128, 28, "3 conv blocks for 28x28 / 8x8 grayscale images"),
        BackboneSpec("resnet18", 512, 224, "ResNet-18", "resnet18", "fc", "conv1"),
        BackboneSpec("resnet50", 2048, 224, "ResNet-50", "resnet50", "fc", "conv1"),
        BackboneSpec("mobilenet_v2", 1280, 224, "MobileNetV2", "mobilenet_v2", "classifier", "features.0.0"),
        BackboneSpec("vit_b_16", 768, 224, "ViT-B/16 (224x224 input only)", "vit_b_16", "heads", "conv_proj"),
    )
}


def get_backbone_spec(name: str) -> BackboneSpec:
    """The registry entry for ``name``; TCMError listing the valid names otherwise."""
    if name not in BACKBONES:
        raise TCMError(f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONES)}")
    return BACKBONES[name]


def create_backbone(
    name: str, weights: str | os.PathLike | None = None, in_channels: int = 3
) -> tuple[nn.Module, int]:
    """Build backbone ``name`` -> (module images (B, C, H, W) -> features (B, F), F).

    ``weights``: None/'none' (random init), a torchvision weight name ('DEFAULT',
    'IMAGENET1K_V1'; downloaded), or a path to a local .pth/.pt state dict in torchvision's layout.
    """
    spec = get_backbone_spec(name)
    if not isinstance(in_channels, int) or in_channels < 1:
        raise TCMError(f"in_channels must be a positive integer; got {in_channels!r}")
    if spec.torchvision_name is None:
        module: nn.Module = SmallCNN(in_channels=in_channels, feature_dim=spec.feature_dim)
        if not is_random(weights) and not is_weight_file(weights):
            raise TCMError(f"{name} has no torchvision weights {weights!r}; use None or a .pth/.pt file path")
    else:
        module = _torchvision_backbone(spec, weights)
    if is_weight_file(weights):
        source = f"weights file {str(weights)!r}"
        load_backbone_state(module, read_state_dict(weights), name=name, source=source)
    if spec.stem is not None and in_channels != 3:
        _adapt_stem(module, spec.stem, in_channels)
    return module, spec.feature_dim


def _torchvision_backbone(spec: BackboneSpec, weights: str | os.PathLike | None) -> nn.Module:
    if is_random(weights) or is_weight_file(weights):  # a file is loaded by the caller
        model = torchvision.models.get_model(spec.torchvision_name, weights=None)
    else:
        enum = torchvision_weights(spec.torchvision_name, str(weights))
        try:
            model = torchvision.models.get_model(spec.torchvision_name, weights=enum)
        except (OSError, RuntimeError) as error:  # URLError is an OSError; a bad download a RuntimeError
            raise TCMError(
                f"could not download torchvision weights {enum} for {spec.name} ({error}). Without "
                "internet, copy the .pth file from a machine that has it and pass its path as "
                "weights, or use weights=None (random init)"
            ) from error
    setattr(model, spec.head, nn.Identity())
    return model


def _adapt_stem(module: nn.Module, path: str, in_channels: int) -> None:
    """Replace the first conv with an ``in_channels`` one keeping its response to grey images."""
    parent_path, _, attr = path.rpartition(".")
    parent = module.get_submodule(parent_path) if parent_path else module
    old: nn.Conv2d = getattr(parent, attr)
    new = nn.Conv2d(
        in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
        old.dilation, old.groups, bias=old.bias is not None,
    )
    with torch.no_grad():
        mean = old.weight.mean(dim=1, keepdim=True)  # (O, 1, k, k)
        new.weight.copy_(mean.repeat(1, in_channels, 1, 1) * (3 / in_channels))
        if old.bias is not None:
            new.bias.copy_(old.bias)
    setattr(parent, attr, new)
