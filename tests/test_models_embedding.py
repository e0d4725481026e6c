"""Tests for tcm_core.models.embedding: unit-norm output, frozen backbone, head-only path."""

import pytest
import torch

from tcm_core.errors import TCMError
from tcm_core.models import EmbeddingModel, SmallCNN, create_model, to_channels_last


def _bn_stats(model):
    return [b.clone() for name, b in model.backbone.named_buffers() if "running" in name]


@pytest.mark.parametrize(("side", "dim"), [(28, 64), (8, 16)])
def test_output_is_unit_norm_with_requested_dim(side, dim):
    torch.manual_seed(0)
    model = create_model("small_cnn", embedding_dim=dim, in_channels=1)
    embeddings = model(torch.randn(6, 1, side, side))
    assert embeddings.shape == (6, dim)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(6))
    assert model.feature_dim == 128 and model.embedding_dim == dim


def test_frozen_backbone_gets_no_grad_and_keeps_bn_statistics():
    torch.manual_seed(0)
    model = create_model("small_cnn", embedding_dim=8, in_channels=1, freeze_backbone=True).train()
    before = _bn_stats(model)
    assert not model.backbone.training and model.head.training
    model(torch.randn(16, 1, 28, 28) * 3 + 1).sum().backward()
    assert all(not p.requires_grad and p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.head.parameters())
    for old, new in zip(before, _bn_stats(model)):
        assert torch.equal(old, new)


def test_trainable_backbone_updates_bn_statistics_and_gets_grads():
    torch.manual_seed(0)
    model = create_model("small_cnn", embedding_dim=8, in_channels=1).train()
    before = _bn_stats(model)
    model(torch.randn(16, 1, 28, 28) * 3 + 1).sum().backward()
    assert any(not torch.equal(o, n) for o, n in zip(before, _bn_stats(model)))
    assert all(p.grad is not None for p in model.backbone.parameters())


def test_unfreezing_restores_grads_and_train_mode():
    model = create_model("small_cnn", embedding_dim=8, in_channels=1, freeze_backbone=True)
    model.set_backbone_frozen(False)
    assert model.backbone.training and all(p.requires_grad for p in model.backbone.parameters())


@pytest.mark.parametrize("head_batchnorm", [False, True])
def test_embed_features_equals_full_forward(head_batchnorm):
    torch.manual_seed(0)
    model = create_model("small_cnn", embedding_dim=32, in_channels=1, head_batchnorm=head_batchnorm)
    model.eval()
    images = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        features = model.backbone(images)  # (5, 128): what a feature cache would hold
        torch.testing.assert_close(model.embed_features(features), model(images))


def test_embed_features_checks_the_feature_shape():
    model = EmbeddingModel(SmallCNN(), feature_dim=128, embedding_dim=4)
    with pytest.raises(TCMError, match=r"shape \(B, 128\); got \(3, 64\)"):
        model.embed_features(torch.randn(3, 64))


@pytest.mark.parametrize("embedding_dim", [0, -3, 2.5, True])
def test_bad_embedding_dim_is_rejected(embedding_dim):
    with pytest.raises(TCMError, match="embedding_dim must be a positive integer"):
        create_model("small_cnn", embedding_dim=embedding_dim, in_channels=1)


def test_channels_last_keeps_outputs_and_converts_weights():
    torch.manual_seed(0)
    model = create_model("resnet18", embedding_dim=16).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(images)
        to_channels_last(model)
        got = model(images)
    assert model.channels_last
    assert model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_create_model_channels_last_flag():
    model = create_model("mobilenet_v2", embedding_dim=8, channels_last=True)
    assert model.channels_last and model.backbone_name == "mobilenet_v2"
    assert model.backbone.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)
