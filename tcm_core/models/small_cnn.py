"""A small CNN backbone for tiny grayscale images (MNIST 28x28, sklearn digits 8x8).

Three conv blocks (conv + BatchNorm + ReLU, the first two followed by 2x2 max-pooling), an
adaptive average pool to 2x2 and a linear layer to the feature vector. The adaptive pool makes
the output size independent of the input size, so 28x28 and 8x8 inputs both give (B, F).
Sized to train an MNIST epoch of 5,000 samples in a few seconds on a laptop CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from tcm_core.errors import TCMError


def _conv_block(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """Images (B, C, H, W) with H, W >= 4 -> pooled features (B, feature_dim)."""

    def __init__(self, in_channels: int = 1, feature_dim: int = 128, width: int = 32):
        super().__init__()
        if in_channels < 1 or feature_dim < 1 or width < 1:
            raise TCMError(
                "SmallCNN needs positive in_channels, feature_dim and width; "
                f"got {in_channels}, {feature_dim}, {width}"
            )
        self.feature_dim = feature_dim
        self.features = nn.Sequential(
            _conv_block(in_channels, width, pool=True),  # 28x28 -> 14x14 (8x8 -> 4x4)
            _conv_block(width, 2 * width, pool=True),  # 14x14 -> 7x7 (4x4 -> 2x2)
            _conv_block(2 * width, 4 * width, pool=False),
        )
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.proj = nn.Linear(4 * width * 4, feature_dim)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(images))  # (B, 4w, 2, 2)
        return self.relu(self.proj(torch.flatten(x, 1)))  # (B, feature_dim)
