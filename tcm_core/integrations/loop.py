"""OPIS every epoch in a plain PyTorch loop: embed a loader with the model, then ``evaluate``
(R@1, MAP@R, OPIS, eps-OPIS with their bootstrap intervals; METHOD.md)::

    from tcm_core.integrations.loop import epoch_opis

    for epoch in range(epochs):
        train_one_epoch(model, train_loader, optimizer)
        ev = epoch_opis(model, val_loader)            # a metrics.Evaluation
        print(epoch, ev.recall_at_1, ev.opis, ev.eps_opis)

or, where the embeddings are at hand already (a validation step that computes them anyway)::

    meter = OpisMeter()
    for images, labels in val_loader:
        meter.update(model(images.to(device)), labels)
    ev = meter.compute()                              # then meter.reset() for the next epoch

The loader yields ``(inputs, labels)`` batches (else pass ``batch_fn``: batch -> (inputs,
labels)); the model maps inputs to embeddings ``(b, d)``. Evaluation runs under
``torch.no_grad()`` in eval mode and puts the model back in the mode it was in.
"""

from __future__ import annotations

import numpy as np
import torch

from tcm_core.checks import as_array
from tcm_core.errors import TCMError
from tcm_core.metrics.evaluation import EvalSettings, Evaluation, evaluate


class OpisMeter:
    """Collects ``(embeddings (b, d), labels (b,))`` batches; ``compute()`` evaluates them all."""

    def __init__(self, settings: EvalSettings = EvalSettings()):
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self._embeddings: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def update(self, embeddings, labels) -> None:
        if isinstance(embeddings, torch.Tensor):  # bf16 / fp16 under autocast: numpy has no bf16
            embeddings = embeddings.detach().float()
        self._embeddings.append(np.asarray(as_array(embeddings, "embeddings"), dtype=np.float32))
        self._labels.append(as_array(labels, "labels").reshape(-1))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(embeddings (n, d), labels (n,))`` collected so far."""
        if not self._embeddings:
            raise TCMError("no embeddings collected: call update(embeddings, labels) first "
                           "(or the loader yielded no batches)")
        return np.concatenate(self._embeddings), np.concatenate(self._labels)

    def compute(self) -> Evaluation:
        return evaluate(*self.arrays(), self.settings)


def _default_batch(batch):
    inputs, labels = batch[0], batch[1]
    return inputs, labels


@torch.no_grad()
def embed(model: torch.nn.Module, loader, device=None, *, batch_fn=_default_batch) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings (n, d) float32, labels (n,))`` of every batch of ``loader``."""
    meter = OpisMeter()
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    try:
        for batch in loader:
            inputs, labels = batch_fn(batch)
            meter.update(model(inputs.to(device)), labels)
    finally:
        model.train(was_training)
    return meter.arrays()


def epoch_opis(model: torch.nn.Module, loader, device=None, settings: EvalSettings = EvalSettings(), *,
               batch_fn=_default_batch) -> Evaluation:
    """Embed ``loader`` with ``model`` (on ``device``, default: where the model's parameters
    are) and evaluate: an ``Evaluation`` with ``recall_at_1``, ``map_at_r``, ``opis``,
    ``eps_opis``, ``opis_ci``, ... (``to_dict()`` for logging)."""
    embeddings, labels = embed(model, loader, device, batch_fn=batch_fn)
    return evaluate(embeddings, labels, settings)


def _model_device(model: torch.nn.Module) -> torch.device:
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")
