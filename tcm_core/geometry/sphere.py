"""Places on the unit sphere (METHOD.md, "The ArcFace toy"): the grids the sphere figure
paints, nearly even point sets, and the kernel concentration a grid can draw cleanly."""

from __future__ import annotations

import numpy as np

from tcm_core.geometry.density import class_densities, default_kappa


def sphere_grid(grid: int = 80):
    """Sites of a lat-long grid: ``(x, y, z)`` each ``(grid, 2 grid)``."""
    theta = np.linspace(0, np.pi, grid)  # polar
    phi = np.linspace(0, 2 * np.pi, 2 * grid)  # azimuth
    t, p = np.meshgrid(theta, phi, indexing="ij")
    return np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)


def sphere_density(points, labels, *, kappa: float, grid: int = 80) -> np.ndarray:
    """Max-over-classes density on ``sphere_grid(grid)`` -> ``(grid, 2 grid)``."""
    x, y, z = sphere_grid(grid)
    sites = np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)
    per_class = class_densities(points, labels, sites, kappa)
    return np.max(np.stack(list(per_class.values())), axis=0).reshape(x.shape)


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly evenly spread unit vectors ``(n, 3)`` (the golden-angle spiral)."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = np.pi * (1 + 5 ** 0.5) * i
    r = np.sqrt(1 - z ** 2)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def max_drawable_kappa(grid: int = 80) -> float:
    """The largest κ a ``sphere_grid(grid)`` paints without aliasing: the kernel's angular
    width 1/sqrt(κ) must span about three grid steps (π / grid each), else its peak falls
    between sites and the spots flicker as κ moves."""
    return float((grid / (3 * np.pi)) ** 2)


def display_kappa(points, labels, grid: int = 80) -> float:
    """``default_kappa`` (the MISE rule of thumb) capped at ``max_drawable_kappa(grid)``."""
    return min(default_kappa(points, labels), max_drawable_kappa(grid))
