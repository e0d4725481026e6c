"""The validation split: carved classes for open-world datasets, held-out images for the toys."""

import hashlib
import random

import numpy as np
import pytest
import torch
from PIL import Image

from tcm_core.data import DataSplits, SubsetSpec, load_dataset
from tcm_core.data.image_list import ImageList
from tcm_core.data.validation import (
    CLASS_RULE, HOLDOUT_RULE, MAX_VAL_IMAGES, carve_val_classes, holdout_indices, num_val_classes,
)
from test_data_benchmarks import make_cars_mat, make_cub, make_inat, make_sop

SHARED = "/work/shared/data"


def _sha1(name):
    return hashlib.sha1(name.encode("utf-8")).hexdigest()


def _write_class(folder, count, shade):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (18 + i, 16), (shade, 30, 60)).save(folder / f"img{i}.png")


def _make_folders(root, names, count=3):
    for j, name in enumerate(names):
        _write_class(root / name, count + j % 2, (17 * j) % 256)
    return root


FOLDER_NAMES = [f"species_{c:02d}" for c in range(20)]  # 10 train -> 2 val + 8 train, 10 test


def _check_disjoint(data):
    train, val, test = set(data.train_classes), set(data.val_classes), set(data.test_classes)
    assert data.has_val and val
    assert not train & val and not train & test and not val & test
    assert len(np.unique(data.val_labels)) == len(data.val_classes)
    assert not set(data.train.items.paths) & set(data.val.items.paths)


# ------------------------------------------------------------ the carving rule

def test_number_of_validation_classes():
    # 20% rounded half up; both train and val keep at least 2 classes, else no validation split
    expected = {0: 0, 1: 0, 2: 0, 3: 0, 4: 2, 5: 2, 6: 2, 10: 2, 12: 2, 13: 3, 50: 10,
                98: 20, 100: 20, 11318: 2264, 5690: 1138}
    assert {n: num_val_classes(n) for n in expected} == expected


def test_carve_takes_lowest_sha1_names_in_any_order():
    names = [f"class {i}" for i in range(37)]
    chosen = carve_val_classes(names)
    assert len(chosen) == 7  # round(7.4)
    assert chosen == set(sorted(names, key=_sha1)[:7])
    for seed in range(5):
        shuffled = names[:]
        random.Random(seed).shuffle(shuffled)
        assert carve_val_classes(shuffled) == chosen
    assert carve_val_classes(tuple(reversed(names))) == chosen


def test_split_classes_does_not_depend_on_class_order():
    # the same images and class names, listed under class keys in two different orders
    names = [f"n{i}" for i in range(10)]
    paths = [f"/x/{name}/{k}.jpg" for name in names for k in range(2)]
    forward = ImageList.from_keys(paths, [p.split("/")[2] for p in paths])
    backward = ImageList.from_keys(paths, [9 - int(p.split("/")[2][1:]) for p in paths],
                                   {9 - i: n for i, n in enumerate(names)})
    assert forward.classes != backward.classes and set(forward.classes) == set(backward.classes)
    results = []
    for items in (forward, backward):
        train, val = items.split_classes(carve_val_classes(items.classes))
        assert len(val.classes) == 2 and len(train.classes) == 8
        for part in (train, val):  # labels relabelled 0..C-1 and pointing at the right names
            assert part.labels.dtype == np.int64 and sorted(set(part.labels.tolist())) == list(range(len(part.classes)))
            assert all(part.classes[label] in path for path, label in zip(part.paths, part.labels))
        results.append((set(train.paths), set(val.paths)))
    assert results[0] == results[1]


# ------------------------------------------------------------ open-world: image folders

def test_folder_train_val_test_are_class_disjoint(tmp_path):
    _make_folders(tmp_path, FOLDER_NAMES)
    data = load_dataset("folder", tmp_path, image_size=16)
    _check_disjoint(data)
    pool = FOLDER_NAMES[:10]
    assert set(data.val_classes) == carve_val_classes(pool) == set(sorted(pool, key=_sha1)[:2])
    assert set(data.train_classes) | set(data.val_classes) == set(pool)
    assert data.test_classes == tuple(FOLDER_NAMES[10:])
    assert list(data.val_classes) == sorted(data.val_classes)  # listed in the loader's order
    assert data.val_labels.dtype == np.int64
    image, label = data.val[len(data.val) - 1]
    assert image.shape == (3, 16, 16) and label == len(data.val_classes) - 1
    assert data.val.transform is data.test.transform  # no augmentation
    assert torch.equal(data.val[0][0], data.val[0][0])
    assert CLASS_RULE in data.identity and "max_val=None" in data.identity
    summary = data.summary()
    assert f"train {len(data.train_labels)} images / 8 classes, val" in summary
    assert len(data.train_labels) + len(data.val_labels) == 35  # the 10 pool classes hold 3 or 4 images
    assert f"val {len(data.val_labels)} images / 2 classes (unseen classes)" in summary


def test_folder_carve_is_stable_across_loads_and_seeds(tmp_path):
    _make_folders(tmp_path, FOLDER_NAMES)
    first = load_dataset("folder", tmp_path, image_size=16, seed=0)
    again = load_dataset("folder", tmp_path, image_size=16, seed=0)
    other = load_dataset("folder", tmp_path, image_size=16, seed=1, max_train_samples=5)
    assert first.val.items.paths == again.val.items.paths == other.val.items.paths
    assert first.val_classes == other.val_classes and first.train_classes == other.train_classes
    assert first.val_labels.tolist() == other.val_labels.tolist()
    assert other.train.items.paths != first.train.items.paths
    # max_per_class subsets validation too, but with a fixed seed: the same for every seed
    per_class = [load_dataset("folder", tmp_path, image_size=16, seed=s, max_per_class=2) for s in (0, 1)]
    assert per_class[0].val.items.paths == per_class[1].val.items.paths
    assert np.bincount(per_class[0].val_labels).tolist() == [2, 2]


def test_folder_carve_does_not_depend_on_creation_order(tmp_path):
    shuffled = FOLDER_NAMES[:]
    random.Random(3).shuffle(shuffled)
    a = load_dataset("folder", _make_folders(tmp_path / "a", FOLDER_NAMES), image_size=16)
    b = load_dataset("folder", _make_folders(tmp_path / "b", shuffled), image_size=16)
    assert a.val_classes == b.val_classes and a.train_classes == b.train_classes


def test_folder_with_renamed_classes_carves_by_name(tmp_path):
    # renaming the pool changes which classes validate, by their hashes only
    renamed = [f"renamed_{c:02d}" for c in range(10)] + FOLDER_NAMES[10:]
    data = load_dataset("folder", _make_folders(tmp_path, renamed), image_size=16)
    assert set(data.val_classes) == set(sorted(renamed[:10], key=_sha1)[:2])


def test_val_subsetting_is_capped_and_seed_free(tmp_path):
    _make_folders(tmp_path, [f"k{c:02d}" for c in range(40)], count=6)  # 20 train -> 4 val
    full = load_dataset("folder", tmp_path, image_size=16)
    assert len(full.val_classes) == 4
    capped = [load_dataset("folder", tmp_path, image_size=16, max_val_samples=8, seed=s) for s in (0, 1)]
    assert capped[0].val.items.paths == capped[1].val.items.paths
    assert len(capped[0].val_labels) == 8 and np.bincount(capped[0].val_labels).tolist() == [2, 2, 2, 2]
    assert set(capped[0].val.items.paths) <= set(full.val.items.paths)
    assert "max_val=8" in capped[0].identity and capped[0].identity != full.identity
    few = load_dataset("folder", tmp_path, image_size=16, max_classes=3, max_per_class=1)
    assert few.val_classes == full.val_classes[:3] and np.bincount(few.val_labels).tolist() == [1, 1, 1]
    assert len(few.train_classes) == 3 and len(few.test_classes) == 3


def test_subset_spec_val_ignores_seed():
    labels = np.repeat([0, 1, 2], [40, 20, 10])
    a = SubsetSpec(max_val_samples=14, max_per_class=15, seed=0).select(labels, "val")
    b = SubsetSpec(max_val_samples=14, max_per_class=15, seed=7).select(labels, "val")
    assert np.array_equal(a, b) and len(a) == 14
    assert len(SubsetSpec(max_val_samples=5).select(labels, "train")) == 70  # val cap only
    with pytest.raises(Exception, match="max_val_samples must be a positive integer"):
        SubsetSpec(max_val_samples=0)


# ------------------------------------------------------------ open-world: benchmark layouts

def _bigger(kind, root):
    """Generated benchmark layouts with 10 training classes (2 become validation classes)."""
    if kind == "cub":
        make_cub(root, counts={**{c: 2 for c in range(1, 11)}, 101: 2, 150: 1})
    elif kind == "cars196":
        make_cars_mat(root, counts={**{c: 1 + c % 2 for c in range(89, 99)}, 99: 2, 196: 1})
    elif kind == "sop":
        train = [(c, "chair" if c % 3 else "sofa") for c in range(1, 11) for _ in range(2)]
        make_sop(root, {"train": train, "test": [(11319, "kettle"), (11320, "kettle")]})
    else:
        train = [("Plantae" if c % 2 else "Aves", 100 + c) for c in range(10) for _ in range(2)]
        make_inat(root, {"train": train, "test": [("Insecta", 1), ("Insecta", 2)]})


@pytest.mark.parametrize("kind", ["cub", "cars196", "sop", "inat2018"])
def test_benchmarks_carve_disjoint_stable_validation(tmp_path, kind):
    _bigger(kind, tmp_path)
    data = load_dataset(kind, tmp_path, image_size=16, download=False)
    _check_disjoint(data)
    assert len(data.train_classes) == 8 and len(data.val_classes) == 2
    assert set(data.val_classes) == carve_val_classes(data.train_classes + data.val_classes)
    assert data.val.transform is data.test.transform
    assert CLASS_RULE in data.identity
    other = load_dataset(kind, tmp_path, image_size=16, download=False, seed=5, max_train_samples=4)
    assert other.val.items.paths == data.val.items.paths and other.val_classes == data.val_classes
    assert data.val[0][0].shape == (3, 16, 16)


# ------------------------------------------------------------ closed-set toys

def _hashes(dataset):
    return [hashlib.sha1(dataset.images[i].numpy().tobytes()).hexdigest() for i in range(len(dataset))]


@pytest.mark.parametrize("name", ["digits", "mnist"])
def test_toy_validation_is_held_out_training_images(name):
    data = load_dataset(name, SHARED)
    n_train_official = {"digits": 1257, "mnist": 60000}[name]
    n_val = min(round(n_train_official / 10), MAX_VAL_IMAGES)
    assert len(data.val_labels) == n_val and len(data.train_labels) == n_train_official - n_val
    assert data.val_classes == data.train_classes == data.test_classes
    assert set(np.unique(data.val_labels)) == set(range(10))  # every class validates
    train, val = _hashes(data.train), _hashes(data.val)
    assert not set(train) & set(val)  # no image both trains and validates
    assert HOLDOUT_RULE in data.identity
    assert "(held-out training images)" in data.summary()


@pytest.mark.parametrize("name", ["digits", "mnist"])
def test_toy_validation_is_the_same_for_every_seed_and_subset(name):
    a = load_dataset(name, SHARED, seed=0, max_train_samples=300)
    b = load_dataset(name, SHARED, seed=1, max_train_samples=300)
    full = load_dataset(name, SHARED, seed=0)
    assert not torch.equal(a.train.images, b.train.images)  # the training subsets differ ...
    assert torch.equal(a.val.images, b.val.images) and torch.equal(a.val.images, full.val.images)  # ... val doesn't
    assert a.val_labels.tolist() == b.val_labels.tolist()
    assert not set(_hashes(a.train)) & set(_hashes(a.val))


def test_toy_validation_uses_the_test_transform_and_subset_options():
    data = load_dataset("digits", max_classes=4, max_per_class=3, train_transform=lambda x: x * 0)
    assert torch.count_nonzero(data.train[0][0]) == 0 and torch.count_nonzero(data.val[0][0]) > 0
    assert data.val_classes == ("0", "1", "2", "3") and np.bincount(data.val_labels).tolist() == [3] * 4
    capped = load_dataset("digits", max_val_samples=20)
    assert len(capped.val_labels) == 20 and set(capped.val_labels.tolist()) == set(range(10))
    assert len(capped.train_labels) == 1131  # the cap only shrinks validation


def test_holdout_indices_are_fixed_and_stratified():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    idx = holdout_indices(labels)
    assert np.array_equal(idx, holdout_indices(labels)) and np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx]).tolist() == [10, 5, 3, 2]
    assert len(holdout_indices(np.zeros(50000, dtype=np.int64))) == MAX_VAL_IMAGES


# ------------------------------------------------------------ DataSplits itself

def test_datasplits_built_without_validation_still_works():
    data = torch.utils.data.TensorDataset(torch.zeros(4, 1, 8, 8), torch.arange(4))
    labels = np.arange(4, dtype=np.int64)
    names = tuple("abcd")
    splits = DataSplits("synthetic", "small", data, data, labels.copy(), labels.copy(), names, names, 1, 8, "id")
    assert not splits.has_val and len(splits.val) == 0 and splits.val_labels.dtype == np.int64
    assert splits.val_classes == () and splits.describe_val() == "none"
    assert "no val split" in splits.summary()
    with pytest.raises(IndexError):
        splits.val[0]


def test_cache_key_ignores_a_seed_that_draws_nothing():
    """Frozen-backbone repeats share one feature cache: without random caps the seed keeps the
    same items, so it is not part of the key; with a cap it is."""
    from tcm_core.data import SubsetSpec

    assert SubsetSpec(seed=0).describe() == SubsetSpec(seed=3).describe()
    assert SubsetSpec(max_classes=5, seed=0).describe() == SubsetSpec(max_classes=5, seed=3).describe()
    assert SubsetSpec(max_train_samples=100, seed=0).describe() != SubsetSpec(max_train_samples=100, seed=3).describe()
