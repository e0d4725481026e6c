"""Training: one engine for the CLI, the app and ``torchrun`` (see ``engine.train``)."""

from tcm_core.training.callbacks import Callback, TrainingStopped
from tcm_core.training.config import TrainConfig
from tcm_core.training.engine import TrainingDiverged, train

__all__ = ["Callback", "TrainConfig", "TrainingDiverged", "TrainingStopped", "train"]
