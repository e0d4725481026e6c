"""Data-root resolution, dataset discovery, subsetting and transform descriptions."""


import numpy as np
import pytest

from tcm_core.data import (SubsetSpec, available_datasets, default_test_transform,
                           default_train_transform, describe_transform, resolve_data_dir)
from tcm_core.data.subset import random_ranks
from tcm_core.errors import TCMError


def test_resolve_order(tmp_path, monkeypatch):
    monkeypatch.setenv("TCM_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("TCM_DATA_DIR")
    assert resolve_data_dir("") == tmp_path / "cache" / "tcm_explorer" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "tcm_explorer" / "data"
    assert not (tmp_path / "home").exists()  # resolving never creates folders
    assert resolve_data_dir("~/x") == tmp_path / "home" / "x"


def test_available_datasets_in_shared_root():
    found = available_datasets("/work/shared/data")
    assert set(found) == {"mnist", "digits", "folder"}
    assert "60,000 train" in found["mnist"]
    assert "/work/shared/data/CUB100/images (100 classes)" in found["folder"]


def test_available_datasets_of_missing_root(tmp_path):
    assert list(available_datasets(tmp_path / "absent")) == ["digits"]


def test_random_ranks_per_class():
    labels = np.array([2, 0, 2, 1, 2, 0])
    ranks, counts = random_ranks(labels, np.random.default_rng(0))
    assert counts.tolist() == [3, 2, 3, 1, 3, 2]
    for c in (0, 1, 2):
        assert sorted(ranks[labels == c].tolist()) == list(range(np.sum(labels == c)))


def test_subset_spec_is_stratified_and_seeded():
    labels = np.repeat([0, 1, 2], [60, 30, 10])
    keep = SubsetSpec(max_train_samples=50, seed=3).select(labels, "train")
    assert np.bincount(labels[keep]).tolist() == [30, 15, 5]  # each class keeps its share
    odd = SubsetSpec(max_train_samples=7, seed=0).select(labels, "train")
    # shares (rank + 0.5) / size: class 0 .008 .025 .042 .058, class 1 .017 .05, class 2 .05 -> 4, 2, 1
    assert np.bincount(labels[odd], minlength=3).tolist() == [4, 2, 1]
    assert np.all(np.diff(keep) > 0)  # original order
    assert np.array_equal(keep, SubsetSpec(max_train_samples=50, seed=3).select(labels, "train"))
    assert not np.array_equal(keep, SubsetSpec(max_train_samples=50, seed=4).select(labels, "train"))
    assert len(SubsetSpec(max_train_samples=50).select(labels, "test")) == 100  # train cap only
    both = SubsetSpec(max_classes=2, max_per_class=20).select(labels, "test")
    assert np.bincount(labels[both]).tolist() == [20, 20]
    with pytest.raises(TCMError, match=r"max_test_samples must be a positive integer or None \(no limit\); got 2.5"):
        SubsetSpec(max_test_samples=2.5)


def test_transform_descriptions():
    assert describe_transform(default_train_transform(128)) == "RandomResizedCrop(128)+HFlip+ImageNetNorm"
    assert describe_transform(default_test_transform(224)) == "Resize(256)+CenterCrop(224)+ImageNetNorm"
    assert describe_transform(None) == "none"
    from torchvision import transforms as T
    assert describe_transform(T.Compose([T.Resize(10), T.ToTensor()])).startswith("Compose( Resize(size=10")
    assert "\n" not in describe_transform(T.Compose([T.Resize(10), T.ToTensor()]))
