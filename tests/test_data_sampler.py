"""ClassBalancedBatchSampler: P x K batches, determinism, epochs, DDP shares, bad arguments."""

from collections import Counter

import numpy as np
import pytest

from tcm_core.data import ClassBalancedBatchSampler
from tcm_core.errors import TCMError

# 6 classes: sizes 10, 10, 8, 6, 3 (fewer than K=4: drawn with replacement), 1
LABELS = np.repeat(np.arange(6), [10, 10, 8, 6, 3, 1])


def test_every_batch_has_p_classes_of_k():
    sampler = ClassBalancedBatchSampler(LABELS, classes_per_batch=3, samples_per_class=4, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == len(LABELS) // 12 == 3
    for batch in batches:
        counts = Counter(LABELS[batch].tolist())
        assert len(batch) == 12 and len(counts) == 3 and set(counts.values()) == {4}
        for cls in counts:
            items = [i for i in batch if LABELS[i] == cls]
            if np.sum(LABELS == cls) >= 4:
                assert len(set(items)) == 4  # no repeats when the class has enough items


def test_small_class_is_drawn_with_replacement():
    labels = np.array([0, 0, 0, 0, 1])
    batch = next(iter(ClassBalancedBatchSampler(labels, 2, 3, seed=3)))
    assert sorted(batch)[-3:] == [4, 4, 4] and len(set(sorted(batch)[:3])) == 3


def test_deterministic_given_seed_and_epoch():
    a = ClassBalancedBatchSampler(LABELS, 2, 2, seed=5)
    b = ClassBalancedBatchSampler(LABELS, 2, 2, seed=5)
    assert list(a) == list(b) == list(a)  # re-iterating the same epoch repeats it
    a.set_epoch(1)
    b.set_epoch(1)
    epoch1 = list(a)
    assert epoch1 == list(b)
    a.set_epoch(0)
    assert epoch1 != list(a)
    assert list(ClassBalancedBatchSampler(LABELS, 2, 2, seed=6)) != list(a)


def test_ranks_get_disjoint_equal_shares():
    full = list(ClassBalancedBatchSampler(LABELS, 2, 2, seed=1, num_replicas=1))
    shares = [list(ClassBalancedBatchSampler(LABELS, 2, 2, seed=1, num_replicas=3, rank=r)) for r in range(3)]
    assert len(full) == 9 and [len(s) for s in shares] == [3, 3, 3]
    assert [len(ClassBalancedBatchSampler(LABELS, 2, 2, num_replicas=3, rank=r)) for r in range(3)] == [3, 3, 3]
    positions = {r: [full.index(batch) for batch in share] for r, share in enumerate(shares)}
    assert positions == {0: [0, 3, 6], 1: [1, 4, 7], 2: [2, 5, 8]}  # the same batches, interleaved
    many = ClassBalancedBatchSampler(LABELS, 2, 2, num_replicas=64, rank=63)
    assert len(many) == 1 and len(list(many)) == 1  # at least one batch per rank


@pytest.mark.parametrize("kwargs, message", [
    (dict(classes_per_batch=1, samples_per_class=2), "classes_per_batch must be an integer >= 2; got 1"),
    (dict(classes_per_batch=7, samples_per_class=2), "labels hold only 6 class"),
    (dict(classes_per_batch=2, samples_per_class=0), "samples_per_class must be an integer >= 1"),
    (dict(classes_per_batch=2, samples_per_class=2, num_replicas=2, rank=2), "rank must be below num_replicas"),
    (dict(classes_per_batch=2, samples_per_class=2, seed=-1), "seed must be an integer >= 0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(TCMError, match=message):
        ClassBalancedBatchSampler(LABELS, **kwargs)


def test_bad_labels_and_epoch():
    with pytest.raises(TCMError, match="labels must be a 1-d integer array"):
        ClassBalancedBatchSampler(np.zeros((3, 2), dtype=int), 2, 2)
    with pytest.raises(TCMError, match="labels must be a 1-d integer array"):
        ClassBalancedBatchSampler([0.5, 1.5], 2, 2)
    with pytest.raises(TCMError, match="epoch must be an integer >= 0"):
        ClassBalancedBatchSampler(LABELS, 2, 2).set_epoch(-1)


def test_works_with_a_dataloader():
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(torch.arange(len(LABELS)), torch.from_numpy(LABELS))
    loader = DataLoader(dataset, batch_sampler=ClassBalancedBatchSampler(LABELS, 3, 2, seed=0))
    batches = list(loader)
    assert len(batches) == len(LABELS) // 6
    assert all(len(torch.unique(y)) == 3 and len(y) == 6 for _, y in batches)
