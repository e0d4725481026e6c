"""Tiny generated copies of the official CUB-200-2011, Cars-196, SOP and iNaturalist-2018 layouts."""

import numpy as np
import pytest
import scipy.io
from PIL import Image

import tcm_core.data.download as download
from tcm_core.data import available_datasets, load_dataset
from tcm_core.errors import TCMError


def _image(path, shade=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 18), (shade, 100, 50)).save(path)


def make_cub(root, counts={1: 2, 2: 3, 3: 1, 101: 2, 150: 4}):
    folder = root / "CUB_200_2011"
    images, labels, image_id = [], [], 0
    for class_id, count in counts.items():
        class_dir = f"{class_id:03d}.Bird_{class_id}"
        for i in range(count):
            image_id += 1
            _image(folder / "images" / class_dir / f"b{i}.jpg")
            images.append(f"{image_id} {class_dir}/b{i}.jpg")
            labels.append(f"{image_id} {class_id}")
    (folder / "images.txt").write_text("\n".join(images) + "\n")
    (folder / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    return folder


def make_cars_mat(root, counts={1: 2, 2: 1, 98: 3, 99: 2, 196: 1}):
    folder = root / "cars196"
    rows = []
    for class_id, count in counts.items():
        for i in range(count):
            rel = f"car_ims/{len(rows) + 1:06d}.jpg"
            _image(folder / rel)
            rows.append((rel, np.array([[class_id]], dtype=np.uint8), np.array([[i % 2]], dtype=np.uint8)))
    annotations = np.zeros((1, len(rows)), dtype=[("relative_im_path", "O"), ("class", "O"), ("test", "O")])
    for j, row in enumerate(rows):
        annotations[0, j] = row
    names = np.empty((1, 196), dtype=object)
    names[0, :] = [f"Car Model {c}" for c in range(1, 197)]
    scipy.io.savemat(folder / "cars_annos.mat", {"annotations": annotations, "class_names": names})
    return folder


def make_cars_kaggle(root):
    folder = root / "cars196"
    names = [f"Car Model {c}" for c in range(1, 197)]
    names[98] = "Ram C/V Cargo Van Minivan 2012"  # class 99; '/' becomes '-' in folder names
    (folder).mkdir(parents=True)
    (folder / "names.csv").write_text("\n".join(names) + "\n")
    for split, rows in (("train", [("a.jpg", 1), ("b.jpg", 99)]), ("test", [("c.jpg", 1), ("d.jpg", 98), ("e.jpg", 99)])):
        for file, class_id in rows:
            _image(folder / "car_data" / "car_data" / split / names[class_id - 1].replace("/", "-") / file)
        (folder / f"anno_{split}.csv").write_text("".join(f"{f},1,2,20,15,{c}\n" for f, c in rows))
    return folder


SOP_SPLITS = {"train": [(1, "bicycle"), (1, "bicycle"), (2, "bicycle"), (5, "chair")],
              "test": [(11319, "kettle"), (11320, "kettle"), (11320, "kettle")]}


def make_sop(root, splits=SOP_SPLITS):
    """``splits``: split -> [(class id, super class)] per image."""
    folder = root / "Stanford_Online_Products"
    for split, rows in splits.items():
        lines = ["image_id class_id super_class_id path"]
        for i, (class_id, sup) in enumerate(rows):
            rel = f"{sup}_final/{class_id}_{i}.JPG"
            _image(folder / rel)
            lines.append(f"{i + 1} {class_id} 1 {rel}")
        (folder / f"Ebay_{split}.txt").write_text("\n".join(lines) + "\n")
    return folder


INAT_SPLITS = {"train": [("Plantae", 7477), ("Plantae", 7477), ("Aves", 3000)],
               "test": [("Insecta", 1), ("Insecta", 2), ("Insecta", 2)]}


def make_inat(root, splits=INAT_SPLITS):
    """``splits``: split -> [(supercategory, category id)] per image."""
    folder = root / "inat2018"
    (folder / "Inat_dataset_splits").mkdir(parents=True)
    for split, rows in splits.items():
        rels = [f"train_val2018/{sup}/{cat}/{split}{i}.jpg" for i, (sup, cat) in enumerate(rows)]
        for rel in rels:
            _image(folder / rel)
        (folder / "Inat_dataset_splits" / f"Inaturalist_{split}_set1.txt").write_text("\n".join(rels) + "\n")
    return folder


def test_cub_official_split(tmp_path):
    make_cub(tmp_path)
    data = load_dataset("cub", tmp_path, image_size=16, download=False)
    assert data.train_classes == ("001.Bird_1", "002.Bird_2", "003.Bird_3")
    assert data.test_classes == ("101.Bird_101", "150.Bird_150")
    assert data.train_labels.tolist() == [0, 0, 1, 1, 1, 2] and data.test_labels.tolist() == [0, 0, 1, 1, 1, 1]
    assert data.train[2][0].shape == (3, 16, 16) and data.train[2][1] == 1
    assert not data.has_val  # 3 training classes: too few to carve validation classes from
    assert f"cub|root={tmp_path / 'CUB_200_2011'}|split=official|" in data.identity
    direct = load_dataset("cub", tmp_path / "CUB_200_2011", image_size=16, download=False)
    assert direct.train.items.paths == data.train.items.paths  # the dataset folder itself works too


def test_cub_subset_options(tmp_path):
    make_cub(tmp_path)
    data = load_dataset("cub", tmp_path, max_classes=2, max_per_class=2, max_test_samples=3,
                        image_size=16, download=False)
    assert np.bincount(data.train_labels).tolist() == [2, 2] and len(data.train_classes) == 2
    assert len(data.test_labels) == 3 and set(data.test_labels.tolist()) == {0, 1}


@pytest.mark.parametrize("make", [make_cars_mat, make_cars_kaggle])
def test_cars196_split_at_class_98(tmp_path, make):
    make(tmp_path)
    data = load_dataset("cars196", tmp_path, image_size=16, download=False)
    if make is make_cars_mat:
        assert data.train_classes == ("Car Model 1", "Car Model 2", "Car Model 98")
        assert data.test_classes == ("Car Model 99", "Car Model 196")
        assert np.bincount(data.train_labels).tolist() == [2, 1, 3] and np.bincount(data.test_labels).tolist() == [2, 1]
    else:
        assert data.train_classes == ("Car Model 1", "Car Model 98")
        assert data.test_classes == ("Ram C/V Cargo Van Minivan 2012",)
        assert data.train_labels.tolist() == [0, 0, 1] and data.test_labels.tolist() == [0, 0]
    assert data.test[0][0].shape == (3, 16, 16)


def test_sop_official_split(tmp_path):
    make_sop(tmp_path)
    data = load_dataset("sop", tmp_path, image_size=16, download=False)
    assert data.train_classes == ("bicycle/1", "bicycle/2", "chair/5")
    assert data.test_classes == ("kettle/11319", "kettle/11320")
    assert data.train_labels.tolist() == [0, 0, 1, 2] and data.test_labels.tolist() == [0, 1, 1]
    assert data.train[3][1] == 2


def test_inat2018_smooth_ap_split(tmp_path):
    make_inat(tmp_path)
    data = load_dataset("inat2018", tmp_path, image_size=16, download=False)
    assert data.train_classes == ("Aves/3000", "Plantae/7477")
    assert data.test_classes == ("Insecta/1", "Insecta/2")
    assert data.train_labels.tolist() == [1, 1, 0] and data.test_labels.tolist() == [0, 1, 1]


def test_available_datasets_lists_each_layout(tmp_path):
    for make in (make_cub, make_cars_mat, make_sop, make_inat):
        make(tmp_path)
    found = available_datasets(tmp_path)
    assert set(found) == {"digits", "cub", "cars196", "sop", "inat2018", "folder"}
    assert str(tmp_path / "CUB_200_2011") in found["cub"]
    assert f"{tmp_path / 'CUB_200_2011' / 'images'} (5 classes)" in found["folder"]


def test_missing_dataset_names_folder_and_files(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "reachable", lambda url, timeout_s=3.0: False)
    with pytest.raises(TCMError) as err:
        load_dataset("cub", tmp_path)
    message = str(err.value)
    assert f"the folder {tmp_path / 'CUB_200_2011'} does not exist" in message
    assert "{images.txt, image_class_labels.txt, images}" in message
    assert "Pass --data-dir pointing at the folder that contains CUB_200_2011/" in message
    assert "data.caltech.edu cannot be reached (offline?)" in message
    with pytest.raises(TCMError, match="not downloaded automatically"):
        load_dataset("inat2018", tmp_path)
    assert not (tmp_path / "CUB_200_2011").exists()


def test_folder_missing_expected_files(tmp_path):
    (tmp_path / "Stanford_Online_Products").mkdir()
    (tmp_path / "Stanford_Online_Products" / "Ebay_train.txt").write_text("header\n")
    with pytest.raises(TCMError, match=r"Stanford_Online_Products is missing Ebay_test.txt\. Expected"):
        load_dataset("sop", tmp_path, download=False)
    (tmp_path / "cars196").mkdir()
    with pytest.raises(TCMError, match=r"\{cars_annos.mat, car_ims\} or \{names.csv, anno_train.csv"):
        load_dataset("cars196", tmp_path, download=False)


def test_malformed_files_are_named(tmp_path):
    folder = make_cub(tmp_path)
    (folder / "image_class_labels.txt").write_text("1 1\n2\n")
    with pytest.raises(TCMError, match=r"image_class_labels.txt line 2 is malformed: expected 2 fields"):
        load_dataset("cub", tmp_path, download=False)
    (folder / "image_class_labels.txt").write_text("1 one\n")
    with pytest.raises(TCMError, match="expected an integer id, got 'one'"):
        load_dataset("cub", tmp_path, download=False)
    (folder / "image_class_labels.txt").write_text("1 1\n2 1\n")
    (folder / "images" / "001.Bird_1" / "b0.jpg").unlink()
    with pytest.raises(TCMError, match=r"lists .*b0.jpg, but that file does not exist"):
        load_dataset("cub", tmp_path, download=False)


def test_malformed_cars_and_inat(tmp_path):
    folder = make_cars_mat(tmp_path)
    (folder / "cars_annos.mat").write_bytes(b"not a mat file")
    with pytest.raises(TCMError, match="could not be read as the Stanford Cars annotation file"):
        load_dataset("cars196", tmp_path, download=False)
    folder = make_inat(tmp_path)
    (folder / "Inat_dataset_splits" / "Inaturalist_test_set1.txt").write_text("just_a_file.jpg\n")
    with pytest.raises(TCMError, match="expected paths like train_val2018/<supercategory>"):
        load_dataset("inat2018", tmp_path, download=False)
