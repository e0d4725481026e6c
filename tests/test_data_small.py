"""MNIST from the shared data root, the 8x8-digits fallback, and `digits` directly."""

import warnings

import numpy as np
import pytest
import torch

import tcm_core.data.small as small
from tcm_core.data import DatasetFallbackWarning, load_dataset
from tcm_core.errors import TCMError

SHARED = "/work/shared/data"


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist", SHARED)


def test_mnist_full_splits(mnist):
    assert (mnist.name, mnist.kind, mnist.in_channels, mnist.image_size) == ("mnist", "small", 1, 28)
    # 2,000 of the 60,000 training images are held out for validation (10%, capped at 2,000)
    assert len(mnist.train) == len(mnist.train_labels) == 58000
    assert len(mnist.val) == len(mnist.val_labels) == 2000
    assert len(mnist.test) == len(mnist.test_labels) == 10000
    assert mnist.train_labels.dtype == np.int64 and mnist.test_labels.dtype == np.int64
    assert mnist.val_labels.dtype == np.int64
    assert set(np.unique(mnist.train_labels)) == set(range(10)) == set(np.unique(mnist.test_labels))
    assert set(np.unique(mnist.val_labels)) == set(range(10))
    assert mnist.train_classes == mnist.test_classes == mnist.val_classes and len(mnist.train_classes) == 10
    assert mnist.note is None and not mnist.open_world


def test_mnist_items_are_normalized_tensors(mnist):
    image, label = mnist.train[0]
    assert isinstance(image, torch.Tensor) and image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert isinstance(label, int) and label == 5  # the first MNIST training digit is a 5
    assert image.min().item() == pytest.approx((0 - 0.1307) / 0.3081, abs=1e-5)
    assert image.max().item() == pytest.approx((1 - 0.1307) / 0.3081, abs=1e-5)
    assert int(mnist.test_labels[0]) == mnist.test[0][1] == 7


def test_mnist_subset_options_are_deterministic():
    kwargs = dict(max_classes=3, max_per_class=50, max_test_samples=60, seed=1)
    a = load_dataset("mnist", SHARED, **kwargs)
    b = load_dataset("mnist", SHARED, **kwargs)
    assert np.bincount(a.train_labels).tolist() == [50, 50, 50]
    assert len(a.test_labels) == 60 and np.bincount(a.test_labels).tolist() == [20, 20, 20]
    assert a.train_classes == ("0 - zero", "1 - one", "2 - two")
    assert torch.equal(a.train[7][0], b.train[7][0]) and a.identity == b.identity
    c = load_dataset("mnist", SHARED, **{**kwargs, "seed": 2})
    assert not torch.equal(torch.stack([a.train[i][0] for i in range(150)]),
                           torch.stack([c.train[i][0] for i in range(150)]))
    assert c.identity != a.identity and "seed=2" in c.identity


def test_mnist_missing_falls_back_to_digits_with_note(tmp_path, monkeypatch):
    monkeypatch.setattr(small, "reachable", lambda url: False)  # offline, even where a network exists
    with pytest.warns(DatasetFallbackWarning, match="MNIST was not found"):
        data = load_dataset("mnist", tmp_path)
    assert data.note is not None
    assert f"MNIST was not found at {tmp_path / 'MNIST' / 'raw'}" in data.note
    assert "cannot be reached (offline?)" in data.note and "8x8 digits are used instead" in data.note
    assert data.image_size == 8 and data.train[0][0].shape == (1, 8, 8)
    assert len(data.train_labels) + len(data.val_labels) + len(data.test_labels) == 1797
    assert "source=sklearn-digits-8x8" in data.identity


def test_fallback_without_download_says_why(tmp_path):
    with pytest.warns(DatasetFallbackWarning):
        data = load_dataset("fashion-mnist", tmp_path, download=False)
    assert "Fashion-MNIST was not found" in data.note and "download=False" in data.note
    assert not (tmp_path / "FashionMNIST").exists()  # nothing written when not downloading


def test_digits_directly_is_a_stratified_70_30_split():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning for the bundled dataset
        data = load_dataset("digits")
    assert data.note is None and data.kind == "small" and data.image_size == 8
    # the official 1257 training images lose 126 (10%) to the validation split
    assert (len(data.train_labels), len(data.val_labels), len(data.test_labels)) == (1131, 126, 540)
    official_train = np.r_[data.train_labels, data.val_labels]
    train_share = np.bincount(official_train) / np.bincount(np.r_[official_train, data.test_labels])
    assert np.all(np.abs(train_share - 0.7) < 0.02)
    val_share = np.bincount(data.val_labels) / np.bincount(official_train)
    assert np.all(np.abs(val_share - 0.1) < 0.02)  # stratified by class
    assert data.train_classes == tuple(str(d) for d in range(10))
    assert abs(float(torch.stack([data.train[i][0] for i in range(len(data.train))]).mean())) < 0.05


def test_custom_transform_applies_to_small_items():
    data = load_dataset("digits", max_per_class=2, train_transform=lambda x: x * 0)
    assert torch.count_nonzero(data.train[0][0]) == 0 and torch.count_nonzero(data.test[0][0]) > 0
    assert "train_tf=<function" in data.identity and "test_tf=none" in data.identity


def test_unknown_name_and_bad_options_raise():
    with pytest.raises(TCMError, match="unknown dataset 'imagenet'; choose one of: mnist, fashion-mnist"):
        load_dataset("imagenet")
    with pytest.raises(TCMError, match="max_per_class must be a positive integer"):
        load_dataset("digits", max_per_class=0)
    with pytest.raises(TCMError, match="seed must be a non-negative integer"):
        load_dataset("digits", seed=-1)
    with pytest.raises(TCMError, match="train_class_fraction applies to the 'folder' dataset only"):
        load_dataset("digits", train_class_fraction=0.3)
    with pytest.warns(DatasetFallbackWarning):  # FashionMNIST/ is not in the shared root
        assert load_dataset("Fashion_MNIST", SHARED, download=False).name == "fashion-mnist"
