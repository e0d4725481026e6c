"""Well-spread initial class directions for losses with class weights or proxies.

With few dimensions (the 3-D ArcFace toy) randomly initialised class weights often start with
two classes nearly on top of each other, and a short run never separates them: results then
depend more on the seed than on the loss. Starting the weights as far apart as the sphere
allows (a few hundred steps of point repulsion, the Thomson problem) removes that lottery.
"""

from __future__ import annotations

import torch


@torch.enable_grad()
def spread_directions(n: int, dim: int, *, seed: int = 0, steps: int = 300) -> torch.Tensor:
    """``(n, dim)`` unit vectors pushed apart by minimising sum of exp(4 cos) over pairs."""
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=1)
    if n <= dim:  # orthogonal directions are already optimal
        q, _ = torch.linalg.qr(x.T)
        return q.T[:n].contiguous()
    x.requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05)
    off = ~torch.eye(n, dtype=torch.bool)
    for _ in range(steps):
        u = torch.nn.functional.normalize(x, dim=1)
        energy = torch.exp(4.0 * (u @ u.T))[off].sum()
        opt.zero_grad()
        energy.backward()
        opt.step()
    return torch.nn.functional.normalize(x.detach(), dim=1)


@torch.no_grad()
def spread_class_weights(loss: torch.nn.Module, seed: int = 0) -> bool:
    """Re-initialise the (D, C) weights of PML ArcFace/CosFace or (C, D) ProxyAnchor proxies
    of ``loss`` (searched among its submodules) as spread directions; False if none."""
    for module in loss.modules():
        w = getattr(module, "W", None)
        w = getattr(module, "proxies", None) if w is None else w
        if isinstance(w, torch.nn.Parameter) and w.ndim == 2:
            classes_first = module.__class__.__name__.startswith("Proxy")
            n, dim = (w.shape[0], w.shape[1]) if classes_first else (w.shape[1], w.shape[0])
            d = spread_directions(n, dim, seed=seed) * w.norm(dim=1 if classes_first else 0).mean()
            w.copy_(d if classes_first else d.T)
            return True
    return False
