"""Tests for tcm_core.models.small_cnn and tcm_core.models.backbones (random weights)."""

import pytest
import torch

from tcm_core.errors import TCMError
from tcm_core.models import BACKBONES, SmallCNN, create_backbone, get_backbone_spec


@pytest.mark.parametrize("side", [28, 8])
def test_small_cnn_feature_shape_for_mnist_and_digits(side):
    model = SmallCNN(in_channels=1, feature_dim=128)
    features = model(torch.randn(5, 1, side, side))
    assert features.shape == (5, 128)
    assert torch.isfinite(features).all()
    assert (features >= 0).all()  # ends in a ReLU


def test_small_cnn_rejects_non_positive_sizes():
    with pytest.raises(TCMError, match="positive"):
        SmallCNN(in_channels=0)


def test_registry_has_the_promised_backbones():
    assert {"small_cnn", "resnet18", "resnet50", "mobilenet_v2", "vit_b_16"} <= set(BACKBONES)


@pytest.mark.parametrize(
    ("name", "side", "dim"),
    [("small_cnn", 28, 128), ("resnet18", 64, 512), ("resnet50", 64, 2048),
     ("mobilenet_v2", 64, 1280), ("vit_b_16", 224, 768)],
)
def test_every_backbone_maps_images_to_pooled_features(name, side, dim):
    in_channels = 1 if name == "small_cnn" else 3
    torch.manual_seed(0)
    module, feature_dim = create_backbone(name, in_channels=in_channels)
    assert feature_dim == dim == get_backbone_spec(name).feature_dim
    module.eval()
    with torch.no_grad():
        features = module(torch.randn(1, in_channels, side, side))
    assert features.shape == (1, dim)
    assert torch.isfinite(features).all()


def test_unknown_backbone_lists_the_valid_names():
    with pytest.raises(TCMError) as info:
        create_backbone("resnet9000")
    message = str(info.value)
    assert "resnet9000" in message
    for name in BACKBONES:
        assert name in message


@pytest.mark.parametrize("weights", [None, "none", "None", "random", ""])
def test_random_weight_spellings_are_accepted(weights):
    _, feature_dim = create_backbone("small_cnn", weights=weights, in_channels=1)
    assert feature_dim == 128


def test_small_cnn_has_no_torchvision_weights():
    with pytest.raises(TCMError, match="small_cnn has no torchvision weights"):
        create_backbone("small_cnn", weights="DEFAULT", in_channels=1)


def test_bad_in_channels_is_rejected():
    with pytest.raises(TCMError, match="in_channels"):
        create_backbone("resnet18", in_channels=0)


def test_one_channel_resnet_accepts_grayscale_images():
    module, _ = create_backbone("resnet18", in_channels=1)
    assert module.conv1.weight.shape == (64, 1, 7, 7)
    assert module.eval()(torch.randn(2, 1, 64, 64)).shape == (2, 512)
