"""Tests for tcm_core.models.weights: local state-dict files, torchvision names, weights_id."""

import os
import urllib.error
from pathlib import Path

import pytest
import torch
import torch.hub
from PIL import Image
from torch import nn
from torchvision import transforms as T

from tcm_core.errors import TCMError
from tcm_core.models import create_backbone, is_weight_file, weights_id

WEIGHTS = Path("/work/shared/weights/mobilenet_v2_imagenet_features.pth")
CUB = Path("/work/shared/data/CUB100/images")
IMAGENET_224 = T.Compose([
    T.Resize(256), T.CenterCrop(224), T.ToTensor(),
    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])


def _cub_images(class_index: int, count: int) -> torch.Tensor:
    folder = sorted(p for p in CUB.iterdir() if p.is_dir())[class_index]
    paths = sorted(folder.glob("*.jpg"))[:count]
    return torch.stack([IMAGENET_224(Image.open(p).convert("RGB")) for p in paths])  # (count, 3, 224, 224)


@pytest.fixture(scope="module")
def pretrained_mobilenet():
    module, feature_dim = create_backbone("mobilenet_v2", weights=str(WEIGHTS))
    return module.eval(), feature_dim


def test_shared_mobilenet_weights_really_load(pretrained_mobilenet):
    module, feature_dim = pretrained_mobilenet
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    assert feature_dim == 1280
    assert torch.equal(module.features[0][0].weight, state["features.0.0.weight"])
    assert torch.equal(module.features[18][1].running_var, state["features.18.1.running_var"])


def test_pretrained_features_of_real_cub_images(pretrained_mobilenet):
    module, _ = pretrained_mobilenet
    images = torch.cat([_cub_images(0, 3), _cub_images(1, 3)])  # two species, 3 images each
    with torch.no_grad():
        features = module(images)
    assert features.shape == (6, 1280)
    assert torch.isfinite(features).all() and (features >= 0).all()  # pooled ReLU6 outputs
    unit = torch.nn.functional.normalize(features, dim=1)
    cos = unit @ unit.T  # (6, 6)
    within = (cos[:3, :3].sum() + cos[3:, 3:].sum() - 6) / 12  # off-diagonal same-species pairs
    between = cos[:3, 3:].mean()
    assert within > between + 0.1  # measured ~0.73 vs ~0.57; random weights give ~0.99 vs ~0.99


def test_full_model_file_with_classifier_keys_loads(tmp_path):
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    state["classifier.1.weight"] = torch.zeros(1000, 1280)
    state["classifier.1.bias"] = torch.zeros(1000)
    path = tmp_path / "full.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    module, _ = create_backbone("mobilenet_v2", weights=path)
    assert torch.equal(module.features[0][0].weight, state["features.0.0.weight"])


def test_missing_backbone_key_names_the_key(tmp_path):
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    del state["features.3.conv.2.weight"]
    path = tmp_path / "missing.pth"
    torch.save(state, path)
    with pytest.raises(TCMError, match=r"missing.*features\.3\.conv\.2\.weight"):
        create_backbone("mobilenet_v2", weights=str(path))


def test_wrong_shape_names_the_key_and_both_shapes(tmp_path):
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    state["features.0.0.weight"] = torch.zeros(32, 3, 5, 5)
    path = tmp_path / "wrong.pt"
    torch.save(state, path)
    with pytest.raises(TCMError, match=r"features\.0\.0\.weight \(file \(32, 3, 5, 5\), model \(32, 3, 3, 3\)\)"):
        create_backbone("mobilenet_v2", weights=str(path))


def test_file_for_another_architecture_is_rejected():
    with pytest.raises(TCMError, match="does not fit backbone 'resnet18'"):
        create_backbone("resnet18", weights=WEIGHTS)


def test_pickled_objects_are_not_loaded(tmp_path):
    path = tmp_path / "module.pth"
    torch.save(nn.Linear(2, 2), path)  # a whole pickled module, not a state dict
    with pytest.raises(TCMError, match="weights-only state dict"):
        create_backbone("small_cnn", weights=path, in_channels=1)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(TCMError, match="weights file not found"):
        create_backbone("resnet18", weights=str(tmp_path / "nope.pth"))


def test_one_channel_stem_keeps_the_response_to_grey_images():
    rgb, _ = create_backbone("mobilenet_v2", weights=WEIGHTS)
    grey, _ = create_backbone("mobilenet_v2", weights=WEIGHTS, in_channels=1)
    image = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        expected = rgb.eval()(image.repeat(1, 3, 1, 1))
        torch.testing.assert_close(grey.eval()(image), expected, rtol=1e-4, atol=1e-4)


def test_offline_torchvision_download_fails_fast_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached checkpoint

    urls = []

    def offline(url, *args, **kwargs):
        urls.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(TCMError, match=r"could not download torchvision weights.*pass its path as weights"):
        create_backbone("resnet18", weights="DEFAULT")
    assert urls == ["https://download.pytorch.org/models/resnet18-f37072fd.pth"]


def test_unknown_torchvision_weight_name_lists_valid_ones():
    with pytest.raises(TCMError, match=r"unknown weights 'IMAGENET9K'.*DEFAULT, IMAGENET1K_V1"):
        create_backbone("resnet18", weights="IMAGENET9K")


def test_weights_id_is_stable_and_tracks_file_changes(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"a": torch.zeros(2)}, path)
    first = weights_id(str(path))
    assert first == weights_id(path) and first.startswith(f"file:{path.resolve()}:")
    os.utime(path, ns=(1, 1))
    assert weights_id(path) != first
    assert weights_id(None) == weights_id("none") == "random"
    assert weights_id("default").endswith(":DEFAULT")
    assert weights_id("ResNet18_Weights.IMAGENET1K_V1").endswith(":IMAGENET1K_V1")


def test_is_weight_file_tells_paths_from_names():
    assert is_weight_file("model.pth") and is_weight_file(WEIGHTS) and is_weight_file("dir/model")
    assert not is_weight_file("DEFAULT") and not is_weight_file("IMAGENET1K_V1") and not is_weight_file(None)
