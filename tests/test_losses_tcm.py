"""TCM (tcm_core/losses/tcm.py; METHOD.md, "TCM") against PML's ThresholdConsistentMarginLoss."""

import pytest
import torch
from pytorch_metric_learning.losses import ThresholdConsistentMarginLoss

from tcm_core.errors import TCMError
from tcm_core.losses import TCMLoss, tcm_from_similarities


def pml_tcm(margin_pos=0.9, margin_neg=0.5, lambda_pos=1.0, lambda_neg=1.0):
    return ThresholdConsistentMarginLoss(lambda_plus=lambda_pos, lambda_minus=lambda_neg,
                                         margin_plus=margin_pos, margin_minus=margin_neg)


def value_and_grad(loss, emb, labels):
    emb = emb.clone().requires_grad_(True)
    value = loss(emb, labels)
    if value.requires_grad:  # PML returns a constant 0 when no pair is hard
        value.backward()
    grad = torch.zeros_like(emb) if emb.grad is None else emb.grad
    return value.detach(), grad


def test_worked_example():
    # METHOD.md: positive term 0.19289, negative term 0.32498, total 0.517876
    emb = torch.tensor([[0.0, 1.0], [0.43, 0.9], [1.0, 0.0], [0.5, 0.5]])
    labels = torch.tensor([0, 0, 1, 1])
    assert torch.isclose(TCMLoss()(emb, labels), torch.tensor(0.517876), atol=1e-6)
    assert torch.isclose(TCMLoss(lambda_neg=0.0)(emb, labels), torch.tensor(0.19289), atol=1e-5)
    assert torch.isclose(TCMLoss(lambda_pos=0.0)(emb, labels), torch.tensor(0.32498), atol=1e-5)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("settings", [
    {},
    dict(margin_pos=0.7, margin_neg=0.1, lambda_pos=2.0, lambda_neg=0.3),
    dict(margin_pos=0.95, margin_neg=-0.2, lambda_pos=0.0, lambda_neg=1.5),
])
def test_matches_pml_values_and_gradients(seed, settings):
    g = torch.Generator().manual_seed(seed)
    emb, labels = torch.randn(24, 6, generator=g), torch.randint(0, 5, (24,), generator=g)
    ours, ours_grad = value_and_grad(TCMLoss(**settings), emb, labels)
    ref, ref_grad = value_and_grad(pml_tcm(**settings), emb, labels)
    assert torch.allclose(ours, ref, atol=1e-6)
    assert torch.allclose(ours_grad, ref_grad, atol=1e-6)


def test_no_hard_pairs_is_zero_with_finite_zero_gradient():
    # two copies of each basis vector: positives have s = 1 > m+, negatives s = 0 < m-
    emb, labels = torch.eye(4).repeat(2, 1), torch.arange(4).repeat(2)
    ours, grad = value_and_grad(TCMLoss(), emb, labels)
    ref, _ = value_and_grad(pml_tcm(), emb, labels)
    assert ours == 0 and ref == 0
    assert torch.isfinite(grad).all() and torch.equal(grad, torch.zeros_like(grad))


def test_one_sided_batches():
    emb = torch.randn(5, 3, generator=torch.Generator().manual_seed(9))
    for labels in (torch.zeros(5, dtype=torch.long), torch.arange(5)):  # no negatives / positives
        ours, grad = value_and_grad(TCMLoss(), emb, labels)
        ref, ref_grad = value_and_grad(pml_tcm(), emb, labels)
        assert torch.allclose(ours, ref, atol=1e-6) and torch.allclose(grad, ref_grad, atol=1e-6)


def test_from_similarities_counts_each_unordered_pair_once():
    # pairs (0,1) same s=0.5 -> hard (0.9-0.5=0.4); (0,2), (1,2) different s=0.8, 0.2 -> only
    # 0.8 is hard (0.8-0.5=0.3): L = 0.4 + 0.3 = 0.7
    sims = torch.tensor([[1.0, 0.5, 0.8], [0.5, 1.0, 0.2], [0.8, 0.2, 1.0]])
    labels = torch.tensor([0, 0, 1])
    same = labels[:, None] == labels[None, :]
    assert torch.isclose(tcm_from_similarities(sims, same), torch.tensor(0.7))


@pytest.mark.parametrize("kwargs,match", [
    (dict(margin_pos=1.5), "margin_pos"),
    (dict(margin_neg=-1.01), "margin_neg"),
    (dict(lambda_pos=-0.1), "lambda_pos"),
    (dict(lambda_neg=-1.0), "lambda_neg"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(TCMError, match=match):
        TCMLoss(**kwargs)


@pytest.mark.parametrize("emb,labels", [
    (torch.randn(4), torch.zeros(4, dtype=torch.long)),
    (torch.randn(4, 3), torch.zeros(5, dtype=torch.long)),
    (torch.randn(4, 3), torch.zeros(4, 1, dtype=torch.long)),
])
def test_wrong_shapes(emb, labels):
    with pytest.raises(TCMError, match=r"\(B, D\)"):
        TCMLoss()(emb, labels)
