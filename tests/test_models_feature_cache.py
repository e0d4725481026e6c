"""Tests for tcm_core.models.feature_cache: extraction, disk cache hits, misses, corruption."""

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tcm_core.errors import TCMError
from tcm_core.models import cached_features, default_cache_dir, extract_features


class CountingBackbone(nn.Module):
    """Flatten + Linear with a BatchNorm (to check eval mode) that counts forward calls."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(16, 4)
        self.norm = nn.BatchNorm1d(4)
        self.calls = 0

    def forward(self, images):
        self.calls += 1
        return self.norm(self.linear(images.flatten(1)))  # (B, 4)


@pytest.fixture
def dataset():
    generator = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(10, 1, 4, 4, generator=generator), torch.arange(10))


def test_extract_features_in_order_eval_mode_with_progress(dataset):
    backbone = CountingBackbone().train()
    seen = []
    features = extract_features(backbone, dataset, device="cpu", batch_size=4, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(4, 10), (8, 10), (10, 10)] and backbone.calls == 3
    assert backbone.training  # mode restored
    with torch.no_grad():
        expected = backbone.eval()(dataset.tensors[0])  # eval: running stats, not batch stats
    torch.testing.assert_close(features, expected)
    assert features.shape == (10, 4) and not features.requires_grad


def test_second_call_loads_from_disk(dataset, tmp_path):
    backbone = CountingBackbone()
    key = {"dataset": "toy", "backbone": "counting", "weights": "random", "transform": "none"}
    first = cached_features(backbone, dataset, key_parts=key, cache_dir=tmp_path, device="cpu", batch_size=4)
    assert backbone.calls == 3
    seen = []
    second = cached_features(backbone, dataset, key_parts=dict(key), cache_dir=tmp_path, device="cpu",
                             batch_size=4, progress=lambda d, t: seen.append((d, t)))
    assert backbone.calls == 3  # not run again
    assert seen == [(10, 10)]
    torch.testing.assert_close(second, first)
    assert [p.suffix for p in tmp_path.iterdir()] == [".pt"]  # no temp files left behind


def test_key_change_recomputes(dataset, tmp_path):
    backbone = CountingBackbone()
    key = {"dataset": "toy", "transform": "none"}
    cached_features(backbone, dataset, key_parts=key, cache_dir=tmp_path, device="cpu", batch_size=5)
    cached_features(backbone, dataset, key_parts={**key, "transform": "flip"}, cache_dir=tmp_path,
                    device="cpu", batch_size=5)
    assert backbone.calls == 4
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_corrupt_cache_file_is_recomputed(dataset, tmp_path):
    backbone = CountingBackbone()
    key = {"dataset": "toy"}
    first = cached_features(backbone, dataset, key_parts=key, cache_dir=tmp_path, device="cpu", batch_size=10)
    (path,) = tmp_path.glob("*.pt")
    path.write_bytes(b"not a torch file")
    again = cached_features(backbone, dataset, key_parts=key, cache_dir=tmp_path, device="cpu", batch_size=10)
    assert backbone.calls == 2
    torch.testing.assert_close(again, first)
    assert torch.load(path, weights_only=True)["features"].shape == (10, 4)  # rewritten, valid


def test_cache_for_a_different_dataset_size_is_recomputed(dataset, tmp_path):
    backbone = CountingBackbone()
    cached_features(backbone, dataset, key_parts={"d": 1}, cache_dir=tmp_path, device="cpu")
    smaller = TensorDataset(dataset.tensors[0][:6])
    features = cached_features(backbone, smaller, key_parts={"d": 1}, cache_dir=tmp_path, device="cpu")
    assert features.shape == (6, 4) and backbone.calls == 2


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TCM_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("TCM_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "tcm_explorer" / "features"


def test_bad_inputs_are_clear_errors(dataset, tmp_path):
    with pytest.raises(TCMError, match="empty dataset"):
        extract_features(CountingBackbone(), TensorDataset(torch.zeros(0, 16)), device="cpu")
    with pytest.raises(TCMError, match="key_parts must be a non-empty dict"):
        cached_features(CountingBackbone(), dataset, key_parts={}, cache_dir=tmp_path, device="cpu")
