"""Losses: TCM here; base losses mostly from pytorch-metric-learning (see ``base``);
``combined`` adds them (L_base + L_TCM)."""

from tcm_core.losses.base import BASE_LOSSES, create_base_loss, loss_needs_classes
from tcm_core.losses.combined import LossTerms, MetricLoss, create_loss
from tcm_core.losses.tcm import LAMBDA_NEG, LAMBDA_POS, MARGIN_NEG, MARGIN_POS, TCMLoss, tcm_from_similarities

__all__ = ["BASE_LOSSES", "LAMBDA_NEG", "LAMBDA_POS", "MARGIN_NEG", "MARGIN_POS", "LossTerms", "MetricLoss", "TCMLoss", "create_base_loss", "create_loss",
           "loss_needs_classes", "tcm_from_similarities"]
