"""OPIS where metric-learning code already lives, so threshold consistency is reported beside
accuracy without changing a training script's shape (METHOD.md, "OPIS" and "eps-OPIS").

- ``pml``: ``OpisAccuracyCalculator``, pytorch-metric-learning's ``AccuracyCalculator`` with
  ``opis`` and ``eps_opis`` added, for its testers and hooks.
- ``loop``: ``epoch_opis(model, loader)`` and ``OpisMeter`` for a plain PyTorch loop.

Nothing here is imported by ``tcm_core`` itself: import the module you use.
"""
