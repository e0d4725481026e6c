"""Base losses: the L_base that TCM is added to (METHOD.md, "TCM": total = L_base + L_TCM).

A registry of named losses, mostly thin wrappers around pytorch-metric-learning (PML).
Two are implemented here because PML has none we can use as is:

- ``smooth_ap``: PML's ``SmoothAPLoss`` reshapes the batch as (batch // classes, classes, D),
  which is only right when classes == samples per class; ours is the same formula
  (Brown et al. 2020, the query counts as its own positive) for any P x K batch.
- ``recall_at_k``: the Recall@k surrogate (Patel et al. 2022), the paper's other base loss.

Losses with learnable proxies or class weights (``needs_classes``) take ``num_classes`` and
``embedding_dim``; the trainer must put ``loss.parameters()`` in its optimizer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from torch import nn

from tcm_core.errors import TCMError


def check_batch(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise TCMError unless ``embeddings (B, D)`` is floating and ``labels (B,)`` integer."""
    if embeddings.ndim != 2 or labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise TCMError(f"a loss needs embeddings (B, D) and labels (B,); got "
                       f"{tuple(embeddings.shape)} and {tuple(labels.shape)}")
    if len(labels) < 2:
        raise TCMError(f"a batch needs at least 2 samples to form pairs; got {len(labels)}")
    if (not embeddings.is_floating_point() or labels.is_floating_point()
            or labels.dtype == torch.bool):
        raise TCMError(f"embeddings must be floating and labels integer; got {embeddings.dtype} "
                       f"and {labels.dtype}")


class PMLLoss(nn.Module):
    """``loss(embeddings (B, D), labels (B,)) -> scalar`` around a PML loss (``self.pml``).

    ``miner`` (optional) picks the tuples; ``num_classes`` (optional) checks labels lie in
    [0, num_classes), which proxy and class-weight losses index with.
    """

    def __init__(self, pml: nn.Module, *, miner: nn.Module | None = None,
                 num_classes: int | None = None):
        super().__init__()
        self.pml, self.miner, self.num_classes = pml, miner, num_classes

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_batch(embeddings, labels)
        if self.num_classes is not None and len(labels) and (
                labels.min() < 0 or labels.max() >= self.num_classes):
            raise TCMError(f"labels must lie in [0, num_classes={self.num_classes}) for this loss; "
                           f"got [{int(labels.min())}, {int(labels.max())}]: remap the labels "
                           "or raise num_classes")
        tuples = None if self.miner is None else self.miner(embeddings, labels)
        return self.pml(embeddings, labels, tuples)


def _equal_class_counts(labels: torch.Tensor, loss_name: str) -> None:
    counts = torch.unique(labels, return_counts=True)[1]
    if len(counts) and (counts != counts[0]).any():
        raise TCMError(f"{loss_name} needs a P x K batch (every class the same number of "
                       f"samples); got class counts {counts.tolist()}: use a P x K sampler")


class SmoothAPLoss(nn.Module):
    """Smooth-AP (Brown et al. 2020): 1 - mean over queries of a sigmoid-relaxed AP.

    For query q, positive x: rank_all = 1 + sum_{z != x} sigmoid((s_qz - s_qx) / temperature),
    rank_pos = the same sum over positives z only; AP_q = mean_x rank_pos / rank_all. As in the
    original code and PML, q is one of its own positives. Labels need not be sorted.
    """

    def __init__(self, temperature: float = 0.01):
        super().__init__()
        self.temperature = float(temperature)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_batch(embeddings, labels)
        _equal_class_counts(labels, "smooth_ap")
        emb = F.normalize(embeddings, dim=1)
        sims = emb @ emb.T  # (B, B)
        same = (labels[:, None] == labels[None, :]).to(sims.dtype)  # (B, B)
        not_self = 1 - torch.eye(len(labels), dtype=sims.dtype, device=sims.device)
        above = torch.sigmoid((sims[:, None, :] - sims[:, :, None]) / self.temperature)  # (q, x, z)
        above = above * not_self  # z == x does not outrank itself
        rank_all = 1 + above.sum(-1)  # (q, x)
        rank_pos = 1 + (above * same[:, None, :]).sum(-1)  # (q, x)
        ap = (rank_pos / rank_all * same).sum(1) / same.sum(1)  # (q,)
        return (1 - ap).mean()


class RecallAtKLoss(nn.Module):
    """Recall@k surrogate (Patel et al. 2022): 1 - mean over queries and k of relaxed R@k.

    rank(q, x) = 1 + sum_{z != q, x} sigmoid((s_qz - s_qx) / temperature) over the batch
    without the query; R@k_q = min(k, sum_{x in P_q} sigmoid((k - rank) / k_temperature))
    / min(k, |P_q|). k is capped at B - 1; queries with no positive are left out.
    Memory is O(chunk * B^2); the paper's very large batches would need its chunked version.
    """

    def __init__(self, k_values: tuple[int, ...] = (1, 2, 4, 8, 16), temperature: float = 0.01,
                 k_temperature: float = 1.0, chunk: int = 64):
        super().__init__()
        self.k_values = tuple(int(k) for k in k_values)
        self.temperature, self.k_temperature = float(temperature), float(k_temperature)
        self.chunk = int(chunk)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_batch(embeddings, labels)
        emb = F.normalize(embeddings, dim=1)
        sims = emb @ emb.T  # (B, B)
        n = len(labels)
        eye = torch.eye(n, dtype=torch.bool, device=sims.device)
        pos = (labels[:, None] == labels[None, :]) & ~eye  # (B, B)
        has_pos = pos.any(1)
        if not has_pos.any():
            return embeddings.sum() * 0  # no query has a positive: nothing to rank
        ks = sims.new_tensor([min(k, n - 1) for k in self.k_values])  # (K,)
        recalls = [self._recall(sims[i:i + self.chunk], pos[i:i + self.chunk],
                                eye[i:i + self.chunk], ks) for i in range(0, n, self.chunk)]
        recall = torch.cat(recalls)  # (B, K)
        return 1 - recall[has_pos].mean()

    def _recall(self, sims, pos, eye, ks):
        """Relaxed R@k for a chunk of queries: sims, pos, eye (c, B), ks (K,) -> (c, K)."""
        others = (~eye[:, None, :] & ~eye[:, :, None]).to(sims.dtype)  # (c, x, z): z, x != q
        others = others * (1 - torch.eye(sims.shape[1], dtype=sims.dtype, device=sims.device))
        above = torch.sigmoid((sims[:, None, :] - sims[:, :, None]) / self.temperature)
        rank = 1 + (above * others).sum(-1)  # (c, x)
        # (c, x, K): soft "x is within the top k"
        hit = torch.sigmoid((ks[None, None, :] - rank[:, :, None]) / self.k_temperature)
        found = (hit * pos[:, :, None]).sum(1)  # (c, K)
        cap = torch.minimum(ks[None, :], pos.sum(1, keepdim=True).to(sims.dtype)).clamp(min=1)
        return torch.minimum(found, ks[None, :]) / cap


def _positive(options: dict[str, Any], *names: str) -> None:
    for name in names:
        if not float(options[name]) > 0:
            raise TCMError(f"{name} must be > 0; got {options[name]}")


def _arcface(num_classes, embedding_dim, *, margin_rad, scale):
    _positive({"scale": scale}, "scale")
    if not 0 <= margin_rad < math.pi / 2:
        raise TCMError(f"margin_rad is an angle in radians in [0, pi/2); got {margin_rad} "
                       "(28.6 degrees is 0.5 rad)")
    pml = pml_losses.ArcFaceLoss(num_classes, embedding_dim, margin=math.degrees(margin_rad),
                                 scale=scale)  # PML takes degrees
    return PMLLoss(pml, num_classes=num_classes)


def _cosface(num_classes, embedding_dim, *, margin, scale):
    _positive({"scale": scale}, "scale")
    pml = pml_losses.CosFaceLoss(num_classes, embedding_dim, margin=margin, scale=scale)
    return PMLLoss(pml, num_classes=num_classes)


def _proxy_anchor(num_classes, embedding_dim, *, margin, alpha):
    _positive({"alpha": alpha}, "alpha")
    pml = pml_losses.ProxyAnchorLoss(num_classes, embedding_dim, margin=margin, alpha=alpha)
    return PMLLoss(pml, num_classes=num_classes)


def _multi_similarity(num_classes, embedding_dim, *, alpha, beta, base):
    _positive({"alpha": alpha, "beta": beta}, "alpha", "beta")
    return PMLLoss(pml_losses.MultiSimilarityLoss(alpha=alpha, beta=beta, base=base))


def _contrastive(num_classes, embedding_dim, *, pos_margin, neg_margin):
    if not 0 <= pos_margin < neg_margin <= 2:
        raise TCMError("contrastive margins are L2 distances between unit vectors: need "
                       f"0 <= pos_margin < neg_margin <= 2; got {pos_margin}, {neg_margin}")
    return PMLLoss(pml_losses.ContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin))


TRIPLET_MINING = ("semihard", "hard", "easy", "all")


def _triplet(num_classes, embedding_dim, *, margin, mining):
    _positive({"margin": margin}, "margin")
    if mining not in TRIPLET_MINING:
        raise TCMError(f"mining must be one of {', '.join(TRIPLET_MINING)}; got {mining!r}")
    miner = pml_miners.TripletMarginMiner(margin=margin, type_of_triplets=mining)
    return PMLLoss(pml_losses.TripletMarginLoss(margin=margin), miner=miner)


def _smooth_ap(num_classes, embedding_dim, *, temperature):
    _positive({"temperature": temperature}, "temperature")
    return SmoothAPLoss(temperature)


def _recall_at_k(num_classes, embedding_dim, *, k_values, temperature, k_temperature):
    _positive({"temperature": temperature, "k_temperature": k_temperature},
              "temperature", "k_temperature")
    if not k_values or any(int(k) < 1 for k in k_values):
        raise TCMError(f"k_values must be a non-empty list of integers >= 1; got {k_values}")
    return RecallAtKLoss(tuple(k_values), temperature, k_temperature)


@dataclass(frozen=True)
class BaseLossSpec:
    """One registry entry: ``build(num_classes, embedding_dim, **options) -> nn.Module``."""

    name: str
    description: str
    needs_classes: bool  # learnable proxies / class weights: give num_classes, embedding_dim
    defaults: dict[str, Any] = field(compare=False, hash=False)
    build: Callable[..., nn.Module] = field(compare=False, hash=False, repr=False)


BASE_LOSSES: dict[str, BaseLossSpec] = {spec.name: spec for spec in (
    BaseLossSpec("arcface", "ArcFace: softmax over class weights with an additive angular margin",
                 True, {"margin_rad": 0.5, "scale": 64.0}, _arcface),
    BaseLossSpec("cosface", "CosFace: softmax over class weights with an additive cosine margin",
                 True, {"margin": 0.35, "scale": 64.0}, _cosface),
    BaseLossSpec("proxy_anchor", "Proxy-Anchor: each class proxy pulls its samples, pushes others",
                 True, {"margin": 0.1, "alpha": 32.0}, _proxy_anchor),
    BaseLossSpec("smooth_ap", "Smooth-AP: sigmoid-relaxed average precision over the batch",
                 False, {"temperature": 0.01}, _smooth_ap),
    BaseLossSpec("recall_at_k", "Recall@k surrogate: sigmoid-relaxed ranks and recall at k",
                 False, {"k_values": (1, 2, 4, 8, 16), "temperature": 0.01, "k_temperature": 1.0},
                 _recall_at_k),
    BaseLossSpec("multi_similarity", "Multi-Similarity: pairs weighted by self and relative "
                 "similarity",
                 False, {"alpha": 2.0, "beta": 50.0, "base": 0.5}, _multi_similarity),
    BaseLossSpec("contrastive", "Contrastive: positives within pos_margin, negatives beyond "
                 "neg_margin (L2 distance of unit vectors; 1.0 = cosine 0.5)",
                 False, {"pos_margin": 0.0, "neg_margin": 1.0}, _contrastive),
    BaseLossSpec("triplet", "Triplet margin loss on mined (default semi-hard) triplets",
                 False, {"margin": 0.1, "mining": "semihard"}, _triplet),
)}


def base_loss_spec(name: str) -> BaseLossSpec:
    """The registry entry for ``name``; TCMError listing the valid names if unknown."""
    if name not in BASE_LOSSES:
        raise TCMError(f"unknown base loss {name!r}; choose one of {', '.join(BASE_LOSSES)}")
    return BASE_LOSSES[name]


def loss_needs_classes(name: str) -> bool:
    """Whether ``name`` has learnable proxies / class weights (needs num_classes, embedding_dim)."""
    return base_loss_spec(name).needs_classes


def create_base_loss(name: str, *, num_classes: int | None = None,
                     embedding_dim: int | None = None, **options: Any) -> nn.Module:
    """Build the base loss ``name``: ``loss(embeddings (B, D), labels (B,)) -> scalar``.

    ``options`` override the entry's ``defaults`` (e.g. ``margin_rad`` for ArcFace, in radians).
    """
    spec = base_loss_spec(name)
    unknown = sorted(set(options) - set(spec.defaults))
    if unknown:
        raise TCMError(f"{name} has no option(s) {', '.join(unknown)}; its options are "
                       f"{', '.join(spec.defaults) or 'none'}")
    if spec.needs_classes:
        for arg, value in (("num_classes", num_classes), ("embedding_dim", embedding_dim)):
            if value is None or int(value) < 1:
                raise TCMError(f"{name} learns one weight vector per class: give {arg} >= 1; "
                               f"got {value}")
        num_classes, embedding_dim = int(num_classes), int(embedding_dim)
    return spec.build(num_classes, embedding_dim, **{**spec.defaults, **options})
