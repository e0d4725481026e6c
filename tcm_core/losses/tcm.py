"""TCM, the threshold-consistent margin loss (METHOD.md, "TCM"; arXiv 2307.04047).

A regularizer added to any base loss. It penalizes only hard pairs: positives less similar
than m+ (margin_pos) and negatives more similar than m- (margin_neg), each side averaged over
its hard pairs, and adds no parameters (it reuses the batch's cosine-similarity matrix).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tcm_core.checks import check_lambda, check_margin
from tcm_core.errors import TCMError

# TCM's default margins and weights (the article's: m+ 0.9, m- 0.5, lambda+ = lambda- = 1)
MARGIN_POS, MARGIN_NEG, LAMBDA_POS, LAMBDA_NEG = 0.9, 0.5, 1.0, 1.0


def _hard_mean(excess: torch.Tensor) -> torch.Tensor:
    """Mean of the non-negative entries of ``excess`` (the hard pairs); 0 when there are none."""
    hard = excess >= 0
    total = torch.where(hard, excess, torch.zeros_like(excess)).sum()
    return total / hard.sum().clamp(min=1)


def tcm_from_similarities(sims: torch.Tensor, same: torch.Tensor, *, margin_pos: float = MARGIN_POS,
                          margin_neg: float = MARGIN_NEG, lambda_pos: float = LAMBDA_POS,
                          lambda_neg: float = LAMBDA_NEG) -> torch.Tensor:
    """TCM on a batch's cosine similarities ``sims (B, B)`` and same-label mask ``same (B, B)``.

    ``lambda_pos * mean_{s in S+, s <= m+} (m+ - s) + lambda_neg * mean_{s in S-, s >= m-} (s - m-)``
    over the unordered pairs a < b.
    """
    upper = torch.ones_like(same).triu(1)
    pos = sims[upper & same]  # (P,)
    neg = sims[upper & ~same]  # (N,)
    return lambda_pos * _hard_mean(margin_pos - pos) + lambda_neg * _hard_mean(neg - margin_neg)


class TCMLoss(nn.Module):
    """``loss(embeddings (B, D), labels (B,)) -> scalar``; embeddings are L2-normalized inside.

    margin_pos = m+, margin_neg = m-, lambda_pos = lambda+, lambda_neg = lambda- (paper symbols).
    """

    def __init__(self, margin_pos: float = MARGIN_POS, margin_neg: float = MARGIN_NEG,
                 lambda_pos: float = LAMBDA_POS, lambda_neg: float = LAMBDA_NEG):
        super().__init__()
        self.margin_pos = check_margin("margin_pos", margin_pos)
        self.margin_neg = check_margin("margin_neg", margin_neg)
        self.lambda_pos = check_lambda("lambda_pos", lambda_pos)
        self.lambda_neg = check_lambda("lambda_neg", lambda_neg)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if embeddings.ndim != 2 or labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
            raise TCMError(
                f"TCMLoss needs embeddings (B, D) and labels (B,); got {tuple(embeddings.shape)} "
                f"and {tuple(labels.shape)}"
            )
        emb = F.normalize(embeddings.float(), dim=1)
        sims = emb @ emb.T  # (B, B)
        same = labels[:, None] == labels[None, :]
        return tcm_from_similarities(sims, same, margin_pos=self.margin_pos,
                                     margin_neg=self.margin_neg, lambda_pos=self.lambda_pos,
                                     lambda_neg=self.lambda_neg)

    def extra_repr(self) -> str:
        return (f"margin_pos={self.margin_pos}, margin_neg={self.margin_neg}, "
                f"lambda_pos={self.lambda_pos}, lambda_neg={self.lambda_neg}")
