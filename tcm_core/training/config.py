"""What a training run is: one frozen, JSON-able ``TrainConfig`` (saved as ``config.json``).

Its evaluation settings are one ``EvalSettings`` (field ``eval``); configs written before, with
flat ``eval_far_range`` / ``eval_num_thresholds`` / ``eval_beta`` / ``eval_eps`` fields, still load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tcm_core.errors import TCMError
from tcm_core.losses.tcm import LAMBDA_NEG, LAMBDA_POS, MARGIN_NEG, MARGIN_POS
from tcm_core.metrics.evaluation import EvalSettings

LEGACY_EVAL_FIELDS = {"eval_far_range": "far_range", "eval_num_thresholds": "num_thresholds",
                      "eval_beta": "beta", "eval_eps": "eps"}


@dataclass(frozen=True)
class TrainConfig:
    """Defaults make the MNIST ArcFace toy: 3-D embeddings that can be drawn on the sphere.

    ``loss_options`` go to the base loss (e.g. ``{"margin_rad": 0.3, "scale": 32}`` for
    ArcFace); None picks ``setup.loss_options``' defaults (a gentler ArcFace in <= 3-D).
    """

    dataset: str = "mnist"
    data_dir: str | None = None
    backbone: str | None = None  # None: small_cnn for small images, mobilenet_v2 for photos
    weights: str | None = None
    freeze_backbone: bool = False
    embedding_dim: int | None = None  # None: 3 for the small toys (drawable), 128 for photos
    loss: str = "arcface"
    tcm: bool = False
    margin_pos: float = MARGIN_POS  # m+
    margin_neg: float = MARGIN_NEG  # m-
    lambda_pos: float = LAMBDA_POS  # lambda+
    lambda_neg: float = LAMBDA_NEG  # lambda-
    epochs: int = 1
    batch_size: int = 16
    samples_per_class: int = 2
    lr: float = 5e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    max_train_samples: int | None = None
    max_test_samples: int | None = None
    max_classes: int | None = None
    max_per_class: int | None = None
    image_size: int = 224
    loss_options: dict | None = None
    eval: EvalSettings = EvalSettings()  # how every epoch's OPIS is measured

    def __post_init__(self):
        for name in ("embedding_dim", "epochs", "batch_size", "samples_per_class"):
            value = getattr(self, name)
            if value is None and name == "embedding_dim":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TCMError(f"{name} must be a positive integer; got {value!r}")
        if not self.lr > 0:
            raise TCMError(f"lr must be > 0; got {self.lr!r}")
        if self.batch_size < 2 * self.samples_per_class:
            raise TCMError(f"batch_size ({self.batch_size}) must hold at least 2 classes of "
                           f"samples_per_class ({self.samples_per_class})")
        if isinstance(self.eval, dict):  # checked now, not after training
            object.__setattr__(self, "eval", EvalSettings.from_dict(self.eval))

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["eval"] = self.eval.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        legacy = {new: d.pop(old) for old, new in LEGACY_EVAL_FIELDS.items() if old in d}
        if legacy:  # a config.json written before EvalSettings was nested
            d["eval"] = {**legacy, **d.get("eval", {})}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TCMError(f"config has unknown fields {unknown}; was it written by another version?")
        return cls(**d)
