"""Plain class folders (generated and the real CUB100 folder) and bad folder paths."""

import numpy as np
import pytest
import torch
from PIL import Image

from tcm_core.data import load_dataset
from tcm_core.errors import TCMError

CUB100 = "/work/shared/data/CUB100/images"


def _write_images(folder, count, color, suffix=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (20 + i, 16), color).save(folder / f"img{i:02d}{suffix}")


@pytest.fixture
def six_classes(tmp_path):
    """Classes c0..c5 with 2..7 images; c1 uses JPEGs, and a notes file is ignored."""
    for c in range(6):
        _write_images(tmp_path / f"c{c}", c + 2, (40 * c, 0, 0), ".jpg" if c == 1 else ".png")
    (tmp_path / "c0" / "notes.txt").write_text("not an image")
    return tmp_path


def test_folder_open_world_split(six_classes):
    data = load_dataset("folder", six_classes, image_size=32)
    assert (data.kind, data.in_channels, data.image_size) == ("image", 3, 32)
    assert data.train_classes == ("c0", "c1", "c2") and data.test_classes == ("c3", "c4", "c5")
    assert data.open_world
    # 3 training classes are too few to carve validation classes from (train and val keep >= 2 each)
    assert not data.has_val and len(data.val) == 0 and data.val_classes == ()
    assert np.bincount(data.train_labels).tolist() == [2, 3, 4]
    assert np.bincount(data.test_labels).tolist() == [5, 6, 7]
    image, label = data.test[len(data.test) - 1]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and label == 2
    assert f"folder|root={six_classes}|split=class-fraction=0.5|" in data.identity
    assert "Resize(36)+CenterCrop(32)+ImageNetNorm" in data.identity


def test_folder_fraction_and_subsets(six_classes):
    data = load_dataset("folder", six_classes, train_class_fraction=0.7, max_classes=3,
                        max_per_class=3, max_test_samples=4, image_size=16)
    # c0..c3 train before the carve; c0 and c1 have the lowest SHA-1 and become validation
    # classes (4 training classes -> 2 val), leaving c2 and c3 (4 and 5 images) to train
    assert data.train_classes == ("c2", "c3") and data.test_classes == ("c4", "c5")
    assert data.val_classes == ("c0", "c1") and np.bincount(data.val_labels).tolist() == [2, 3]
    assert np.bincount(data.train_labels).tolist() == [3, 3]
    assert len(data.test_labels) == 4 and np.bincount(data.test_labels).tolist() == [2, 2]
    again = load_dataset("folder", six_classes, train_class_fraction=0.7, max_classes=3,
                         max_per_class=3, max_test_samples=4, image_size=16)
    assert again.train.items.paths == data.train.items.paths and again.identity == data.identity


def test_real_cub100_folder():
    data = load_dataset("folder", CUB100, max_per_class=2, image_size=64)
    # the first 50 folders train, minus the 10 (20%) carved out as validation classes
    assert len(data.train_classes) == 40 and len(data.val_classes) == 10 and len(data.test_classes) == 50
    assert data.train_classes[0] == "001.Groove_billed_Ani"
    assert data.val_classes[0] == "000.Black_footed_Albatross"
    assert data.test_classes[0] == "050.Red_breasted_Merganser"
    assert not set(data.train_classes) & set(data.test_classes)
    assert not set(data.val_classes) & (set(data.train_classes) | set(data.test_classes))
    assert np.bincount(data.train_labels).tolist() == [2] * 40 and np.bincount(data.val_labels).tolist() == [2] * 10
    assert np.bincount(data.test_labels).tolist() == [2] * 50
    image, label = data.train[0]
    assert image.shape == (3, 64, 64) and label == 0


def test_missing_folder_is_explained(tmp_path):
    with pytest.raises(TCMError, match=r"image folder .*nope does not exist; pass --data-dir pointing at a folder of class folders"):
        load_dataset("folder", tmp_path / "nope")


def test_empty_class_folders_are_explained(tmp_path):
    for c in range(5):
        (tmp_path / f"class{c}").mkdir()
    _write_images(tmp_path / "class0", 2, (0, 0, 0))
    with pytest.warns(UserWarning, match="skipping 4 class folder"):
        with pytest.raises(TCMError, match=r"holds 1 class folder\(s\) with images .*at least 4 are needed"):
            load_dataset("folder", tmp_path)


def test_bad_fraction_and_image_size(six_classes):
    with pytest.raises(TCMError, match="train_class_fraction must be strictly between 0 and 1"):
        load_dataset("folder", six_classes, train_class_fraction=1.0)
    with pytest.raises(TCMError, match="image_size must be an integer of at least 16"):
        load_dataset("folder", six_classes, image_size=4)
    with pytest.raises(TCMError, match="max_classes must be a positive integer or None"):
        load_dataset("folder", six_classes, max_classes=0)
