"""How the validation split is chosen, for both kinds of dataset.

Open-world datasets (``folder``, ``cub``, ``cars196``, ``sop``, ``inat2018``): validation
*classes* are carved from the training classes, so train, validation and test classes are
pairwise disjoint and validation measures generalization to unseen classes, like the test split.
The rule (``carve_val_classes``): rank the training class *names* by the SHA-1 of their UTF-8
bytes (ties, i.e. equal names, by name) and take the lowest ``VAL_CLASS_FRACTION`` (20%,
rounded). Validation needs positive and negative pairs, and training too, so both keep at least
``MIN_VAL_CLASSES`` = 2 classes: with fewer than 4 training classes no validation split is
carved (it is empty). The choice depends only on the set of class names: not on the seed, the
run, or the order the classes are listed in.

Closed-set toys (``mnist``, ``fashion-mnist``, ``digits``): every class is in train and test,
so validation is a held-out share of the training *images*: ``VAL_IMAGE_FRACTION`` (10%) of the
full training split, at most ``MAX_VAL_IMAGES`` (2,000), stratified by class and drawn with the
fixed ``HOLDOUT_SEED`` before any subsetting (``holdout_indices``), so it is the same for every
run and seed.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from tcm_core.data.subset import stratified_sample

VAL_CLASS_FRACTION = 0.2
MIN_VAL_CLASSES = 2  # and at least this many training classes remain
VAL_IMAGE_FRACTION = 0.1
MAX_VAL_IMAGES = 2000
HOLDOUT_SEED = 20240  # fixed; never the training seed

CLASS_RULE = f"val=classes(sha1,{VAL_CLASS_FRACTION},min={MIN_VAL_CLASSES})"
HOLDOUT_RULE = f"val=holdout({VAL_IMAGE_FRACTION},max={MAX_VAL_IMAGES},seed={HOLDOUT_SEED})"


def _name_hash(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8")).hexdigest()


def num_val_classes(num_train_classes: int, fraction: float = VAL_CLASS_FRACTION) -> int:
    """How many of ``num_train_classes`` become validation classes (0 when too few to carve)."""
    if num_train_classes < 2 * MIN_VAL_CLASSES:
        return 0
    n_val = int(np.floor(num_train_classes * fraction + 0.5))  # round half up, unlike round()
    return min(max(n_val, MIN_VAL_CLASSES), num_train_classes - MIN_VAL_CLASSES)


def carve_val_classes(class_names: Sequence[str], fraction: float = VAL_CLASS_FRACTION) -> frozenset[str]:
    """The names among ``class_names`` (training classes) that become validation classes.

    The lowest ``num_val_classes(len(class_names))`` names by SHA-1; independent of list order.
    """
    names = [str(n) for n in class_names]
    ranked = sorted(names, key=lambda n: (_name_hash(n), n))
    return frozenset(ranked[:num_val_classes(len(names), fraction)])


def holdout_indices(labels: np.ndarray) -> np.ndarray:
    """Sorted indices (int64) of the training images held out for validation (closed-set toys).

    ``VAL_IMAGE_FRACTION`` of ``labels`` (rounded, at least one image), at most ``MAX_VAL_IMAGES``,
    stratified by class, drawn with ``HOLDOUT_SEED``: the same for every call on the same labels.
    """
    labels = np.asarray(labels)
    if len(labels) < 2:
        return np.zeros(0, dtype=np.int64)
    size = min(max(int(np.floor(len(labels) * VAL_IMAGE_FRACTION + 0.5)), 1), MAX_VAL_IMAGES)
    return stratified_sample(labels, size, np.random.default_rng(HOLDOUT_SEED))
