"""Base losses (tcm_core/losses/base.py) and base +TCM (combined.py); METHOD.md, "TCM"."""

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses

from tcm_core.errors import TCMError
from tcm_core.losses import (BASE_LOSSES, LossTerms, MetricLoss, TCMLoss, create_base_loss,
                             create_loss, loss_needs_classes)

NAMES = sorted(BASE_LOSSES)


def pk_batch(seed, classes=4, per_class=4, dim=8, shuffle=True):
    """A random P x K batch; shuffled so classes are not contiguous."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(per_class)
    if shuffle:
        labels = labels[torch.randperm(len(labels), generator=g)]
    return torch.randn(len(labels), dim, generator=g), labels


# --- registry --------------------------------------------------------------------------------

def test_registry_entries_describe_themselves():
    for name, spec in BASE_LOSSES.items():
        assert spec.name == name and spec.description
        assert loss_needs_classes(name) == spec.needs_classes
    assert {n for n in NAMES if loss_needs_classes(n)} == {"arcface", "cosface", "proxy_anchor"}


def test_unknown_name_lists_valid_names():
    with pytest.raises(TCMError, match="arcface.*smooth_ap"):
        create_base_loss("arcfase", num_classes=4, embedding_dim=8)
    with pytest.raises(TCMError, match="arcfase"):
        loss_needs_classes("arcfase")


def test_bad_options_and_missing_classes():
    with pytest.raises(TCMError, match="no option.*margin_deg.*margin_rad"):
        create_base_loss("arcface", num_classes=4, embedding_dim=8, margin_deg=28.6)
    with pytest.raises(TCMError, match="num_classes"):
        create_base_loss("proxy_anchor", embedding_dim=8)
    with pytest.raises(TCMError, match="radians"):
        create_base_loss("arcface", num_classes=4, embedding_dim=8, margin_rad=28.6)
    with pytest.raises(TCMError, match="mining"):
        create_base_loss("triplet", mining="hardest")
    with pytest.raises(TCMError, match="temperature"):
        create_base_loss("smooth_ap", temperature=0)
    with pytest.raises(TCMError, match="neg_margin"):
        create_base_loss("contrastive", pos_margin=1.0, neg_margin=0.5)


def test_proxy_losses_have_parameters_and_check_label_range():
    for name in NAMES:
        loss = create_base_loss(name, num_classes=4, embedding_dim=8)
        assert bool(list(loss.parameters())) == loss_needs_classes(name), name
    emb, labels = pk_batch(0)
    with pytest.raises(TCMError, match="num_classes=3"):
        create_base_loss("cosface", num_classes=3, embedding_dim=8)(emb, labels)


def test_bad_shapes_raise():
    loss = create_loss("multi_similarity", tcm=True)
    with pytest.raises(TCMError, match=r"\(B, D\)"):
        loss(torch.randn(4, 2), torch.zeros(5, dtype=torch.long))
    with pytest.raises(TCMError, match="integer"):
        loss(torch.randn(4, 2), torch.zeros(4))


# --- every loss, with and without TCM --------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("tcm", [False, True])
def test_terms_finite_and_add_up(name, tcm):
    emb, labels = pk_batch(1)
    emb.requires_grad_(True)
    loss = create_loss(name, num_classes=4, embedding_dim=8, tcm=tcm)
    terms = loss(emb, labels)
    assert isinstance(terms, LossTerms)
    assert all(t.ndim == 0 and torch.isfinite(t) for t in (terms.total, terms.base, terms.tcm))
    assert torch.equal(terms.total, terms.base + terms.tcm)
    expected_tcm = TCMLoss()(emb, labels) if tcm else torch.tensor(0.0)
    assert torch.allclose(terms.tcm, expected_tcm, atol=1e-7)
    terms.total.backward()
    assert emb.grad is not None and torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0


def test_metric_loss_passes_tcm_settings_through():
    emb, labels = pk_batch(2)
    loss = create_loss("contrastive", tcm=True, margin_pos=0.7, margin_neg=0.2, lambda_pos=2.0,
                       lambda_neg=0.5)
    expected = TCMLoss(0.7, 0.2, 2.0, 0.5)(emb, labels)
    assert torch.allclose(loss(emb, labels).tcm, expected)
    assert isinstance(loss, MetricLoss) and loss.tcm.margin_pos == 0.7


# --- against PML -----------------------------------------------------------------------------

def test_arcface_margin_in_radians_matches_pml_in_degrees():
    emb, labels = pk_batch(3)
    for margin_rad in (0.5, 0.2):
        ours = create_base_loss("arcface", num_classes=4, embedding_dim=8, margin_rad=margin_rad,
                                scale=30.0)
        pml = pml_losses.ArcFaceLoss(4, 8, margin=math.degrees(margin_rad), scale=30.0)
        pml.W.data.copy_(ours.pml.W.data)
        assert torch.allclose(ours(emb, labels), pml(emb, labels), atol=1e-5)
    # the default 0.5 rad is PML's default 28.6 degrees up to rounding
    assert math.isclose(math.degrees(0.5), 28.6, abs_tol=0.05)


@pytest.mark.parametrize("name,cls,kwargs", [
    ("multi_similarity", pml_losses.MultiSimilarityLoss, dict(alpha=2, beta=50, base=0.5)),
    ("contrastive", pml_losses.ContrastiveLoss, dict(pos_margin=0, neg_margin=1)),
])
def test_pair_losses_are_pml(name, cls, kwargs):
    emb, labels = pk_batch(4)
    assert torch.allclose(create_base_loss(name)(emb, labels), cls(**kwargs)(emb, labels))


def test_smooth_ap_shuffled_batch_matches_pml_on_sorted_batch():
    emb, labels = pk_batch(5, classes=4, per_class=4)
    order = torch.sort(labels, stable=True).indices
    expected = pml_losses.SmoothAPLoss(temperature=0.01)(emb[order], labels[order])
    assert torch.allclose(create_base_loss("smooth_ap")(emb, labels), expected, atol=1e-6)


def smooth_ap_loop(emb, labels, temperature=0.01):
    """Slow reference: Smooth-AP query by query, positive by positive (query is a positive)."""
    emb = F.normalize(emb, dim=1)
    sims, n, aps = emb @ emb.T, len(labels), []
    for q in range(n):
        positives = [x for x in range(n) if labels[x] == labels[q]]
        ratio = 0.0
        for x in positives:
            sig = [torch.sigmoid((sims[q, z] - sims[q, x]) / temperature)
                   for z in range(n) if z != x]
            sig_pos = [torch.sigmoid((sims[q, z] - sims[q, x]) / temperature)
                       for z in positives if z != x]
            ratio += (1 + sum(sig_pos)) / (1 + sum(sig))
        aps.append(ratio / len(positives))
    return 1 - sum(aps) / n


@pytest.mark.parametrize("classes,per_class", [(2, 6), (6, 2), (3, 3)])
def test_smooth_ap_matches_loop_for_any_p_by_k(classes, per_class):
    # PML's SmoothAPLoss is only right when classes == per_class; ours must hold for any P x K
    emb, labels = pk_batch(6, classes, per_class)
    got = create_base_loss("smooth_ap")(emb, labels)
    assert torch.allclose(got, smooth_ap_loop(emb, labels), atol=1e-6)


def test_smooth_ap_unequal_class_counts_raise():
    emb = torch.randn(7, 4)
    with pytest.raises(TCMError, match=r"P x K.*\[3, 4\]"):
        create_base_loss("smooth_ap")(emb, torch.tensor([0, 0, 0, 1, 1, 1, 1]))


# --- Recall@k surrogate ----------------------------------------------------------------------

def recall_at_k_loop(emb, labels, ks=(1, 2, 4, 8, 16), t_rank=0.01, t_k=1.0):
    emb = F.normalize(emb, dim=1)
    sims, n, recalls = emb @ emb.T, len(labels), []
    for q in range(n):
        positives = [x for x in range(n) if x != q and labels[x] == labels[q]]
        if not positives:
            continue
        for k in ks:
            k = min(k, n - 1)
            found = 0.0
            for x in positives:
                rank = 1 + sum(torch.sigmoid((sims[q, z] - sims[q, x]) / t_rank)
                               for z in range(n) if z not in (q, x))
                found += torch.sigmoid((k - rank) / t_k)
            recalls.append(min(found, torch.tensor(float(k))) / min(k, len(positives)))
    return 1 - sum(recalls) / len(recalls)


def test_recall_at_k_matches_loop_including_a_singleton_class():
    emb, labels = pk_batch(7, classes=3, per_class=4)
    labels = torch.cat([labels, torch.tensor([9])])  # query with no positive: left out
    emb = torch.cat([emb, torch.randn(1, 8)])
    loss = create_base_loss("recall_at_k")
    assert torch.allclose(loss(emb, labels), recall_at_k_loop(emb, labels), atol=1e-6)
    loss.chunk = 5  # query chunks must not change the value
    assert torch.allclose(loss(emb, labels), recall_at_k_loop(emb, labels), atol=1e-6)


def test_recall_at_k_hand_case():
    # Four points, two classes, perfectly separated: each query's one positive has rank 1
    # (the other two items are much less similar), so with a hard rank sigmoid
    # R@1 = sigmoid((1 - 1) / 1) = 0.5 and R@2 = sigmoid((2 - 1) / 1) = 0.7311.
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    loss = create_base_loss("recall_at_k", k_values=(1, 2))
    assert torch.isclose(loss(emb, labels), torch.tensor(1 - (0.5 + 0.731059) / 2), atol=1e-5)


def test_recall_at_k_without_positives_is_zero_with_gradient():
    emb = torch.randn(3, 4, requires_grad=True)
    value = create_base_loss("recall_at_k")(emb, torch.tensor([0, 1, 2]))
    value.backward()
    assert value == 0 and torch.equal(emb.grad, torch.zeros(3, 4))


# --- training sanity -------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("tcm", [False, True])
def test_few_adam_steps_reduce_the_loss(name, tcm):
    # 4 classes of 2-D points around the corners of a square, 4 per class; a linear embedding
    # whose large bias starts every point at nearly the same direction (a collapsed start)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat(4)
    corners = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    x = corners[labels] + 0.2 * torch.randn(16, 2, generator=g)
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 8)
    with torch.no_grad():
        model.bias.fill_(1.0)
    loss = create_loss(name, num_classes=4, embedding_dim=8, tcm=tcm)
    opt = torch.optim.Adam([*model.parameters(), *loss.parameters()], lr=0.02)
    with torch.no_grad():
        before = loss(model(x), labels).total.item()
    for _ in range(30):
        opt.zero_grad()
        loss(model(x), labels).total.backward()
        opt.step()
    with torch.no_grad():
        after = loss(model(x), labels).total.item()
    assert after < before, (before, after)
