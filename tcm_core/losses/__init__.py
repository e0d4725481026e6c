"""Losses: TCM here; base losses come from pytorch-metric-learning (see ``base``)."""

from tcm_core.losses.tcm import TCMLoss, tcm_from_similarities

__all__ = ["TCMLoss", "tcm_from_similarities"]
