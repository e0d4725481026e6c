"""The training loss: a base loss plus, optionally, TCM (METHOD.md, "TCM": L_base + L_TCM).

``MetricLoss`` returns the terms separately so a trainer or UI can log and plot each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tcm_core.losses.base import create_base_loss
from tcm_core.losses.tcm import LAMBDA_NEG, LAMBDA_POS, MARGIN_NEG, MARGIN_POS, TCMLoss


@dataclass(frozen=True)
class LossTerms:
    """Scalar tensors: ``total = base + tcm``; ``tcm`` is 0 when TCM is off."""

    total: torch.Tensor
    base: torch.Tensor
    tcm: torch.Tensor


class MetricLoss(nn.Module):
    """``loss(embeddings (B, D), labels (B,)) -> LossTerms``: ``base`` plus optional ``tcm``.

    ``loss.parameters()`` holds the base loss's proxies or class weights, if any: give them
    to the optimizer.
    """

    def __init__(self, base: nn.Module, tcm: TCMLoss | None = None):
        super().__init__()
        self.base, self.tcm = base, tcm

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossTerms:
        base = self.base(embeddings, labels)
        tcm = base.new_zeros(()) if self.tcm is None else self.tcm(embeddings, labels)
        return LossTerms(total=base + tcm, base=base, tcm=tcm)


def create_loss(name: str, *, num_classes: int | None = None, embedding_dim: int | None = None,
                tcm: bool = False, margin_pos: float = MARGIN_POS, margin_neg: float = MARGIN_NEG,
                lambda_pos: float = LAMBDA_POS, lambda_neg: float = LAMBDA_NEG,
                **base_options: Any) -> MetricLoss:
    """Base loss ``name`` (see ``BASE_LOSSES``), plus TCM with m+ = margin_pos, m- = margin_neg,
    lambda+ = lambda_pos, lambda- = lambda_neg when ``tcm`` is True."""
    base = create_base_loss(name, num_classes=num_classes, embedding_dim=embedding_dim,
                            **base_options)
    reg = TCMLoss(margin_pos, margin_neg, lambda_pos, lambda_neg) if tcm else None
    return MetricLoss(base, reg)
