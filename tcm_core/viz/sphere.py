"""Embeddings on the hypersphere (METHOD.md, "The ArcFace toy"): the 3-D sphere with each
class's kernel density painted on the surface, the 2-D circle with an arrow to each class center
and its density drawn around it, and a 2-D projection scatter for higher dimensions.

The sphere's color at a site is the **largest class density** there (each class's density
integrates to 1 on its own, ``tcm_core.density.class_densities``): every cluster shows as its
own hot spot whatever its neighbours do, and the cold gaps between clusters read directly. The
total density would blur touching clusters into one. Pair figures share one color range
(``zmax``) and one camera, so baseline and +TCM compare at a glance.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from tcm_core.checks import as_array, check_labels, check_points
from tcm_core.errors import TCMError
from tcm_core.geometry.density import class_centers, class_densities, default_kappa
from tcm_core.geometry.projection import stratified_sample
from tcm_core.geometry.sphere import display_kappa, fibonacci_sphere, sphere_density, sphere_grid
from tcm_core.viz._style import PAIR_TITLES, rgba

DENSITY_SCALE = "RdYlBu_r"  # blue (empty) -> yellow -> red (dense), like the article's figure
CLASS_PALETTE = qualitative.Dark24 + qualitative.Light24
LEGEND_LIMIT = 20  # classes named in a projection's legend (the largest ones)
_CAMERA_DISTANCE = 1.45
_AXIS_OFF = dict(visible=False, showbackground=False, range=[-1.25, 1.25])


def class_colors(classes) -> dict:
    """Class -> a qualitative color (cycling after 48 classes)."""
    return {c: CLASS_PALETTE[i % len(CLASS_PALETTE)] for i, c in enumerate(classes)}


def default_camera(*center_sets) -> dict:
    """Look at the sphere from the side that shows the most class centers face-on (the
    direction v maximizing sum max(0, center · v) over all runs' centers), slightly raised."""
    centers = np.concatenate([c[np.all(np.isfinite(c), axis=1)] for c in center_sets])
    candidates = fibonacci_sphere(400)
    view = candidates[np.argmax(np.clip(candidates @ centers.T, 0, None).sum(axis=1))] \
        if len(centers) else np.array([1.0, 1.0, 0.6]) / np.sqrt(2.36)
    view = view + np.array([0.0, 0.0, 0.25])
    eye = _CAMERA_DISTANCE * view / np.linalg.norm(view)
    return dict(eye=dict(x=eye[0], y=eye[1], z=eye[2]), up=dict(x=0, y=0, z=1),
                center=dict(x=0, y=0, z=0))


def _sphere_traces(points, labels, density, *, grid, zmax, max_points, colors, show_scale,
                   show_legend):
    x, y, z = sphere_grid(grid)
    traces = [go.Surface(
        x=x, y=y, z=z, surfacecolor=density, cmin=0.0, cmax=zmax, colorscale=DENSITY_SCALE,
        showscale=show_scale, opacity=1.0, name="density",
        colorbar=dict(title=dict(text="class<br>density", side="top"), len=0.75, thickness=14),
        lighting=dict(ambient=0.85, diffuse=0.3, specular=0.05, roughness=0.9),
        hovertemplate="density %{surfacecolor:.3g}<extra></extra>")]
    keep = stratified_sample(labels, max_points)
    classes, centers, _ = class_centers(points, labels)
    for c, center in zip(classes, centers):
        idx = keep[labels[keep] == c]
        p = points[idx] * 1.012  # just above the surface, so the markers are not hidden in it
        traces.append(go.Scatter3d(
            x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", name=str(c), legendgroup=str(c),
            showlegend=show_legend, marker=dict(size=1.5, color=colors[c], opacity=0.5),
            hoverinfo="skip"))
        tip = center * 1.2
        traces.append(go.Scatter3d(
            x=[center[0] * 1.02, tip[0]], y=[center[1] * 1.02, tip[1]], z=[center[2] * 1.02, tip[2]],
            mode="lines+markers+text", legendgroup=str(c), showlegend=False, text=["", str(c)],
            textposition="top center", textfont=dict(size=12, color="#111"),
            line=dict(color=colors[c], width=5), marker=dict(size=[0, 6], color=colors[c],
                                                             line=dict(color="#111", width=1)),
            hovertemplate=f"{c}<br>center<extra></extra>"))
    return traces


def sphere_figure(points, labels, *, kappa: float | None = None, grid: int = 80, title: str = "",
                  max_points: int = 3000, zmax: float | None = None) -> go.Figure:
    """One run's 3-D embeddings ``points (n, 3)`` on the unit sphere, colored by density.

    ``kappa`` defaults to ``display_kappa(points, labels, grid)``; ``zmax`` (the color scale's top)
    defaults to this run's peak density; ``max_points`` points are drawn as small markers.
    """
    points, labels = check_points(points, labels, dims=(3,))
    kappa = display_kappa(points, labels, grid) if kappa is None else kappa
    density = sphere_density(points, labels, kappa=kappa, grid=grid)
    zmax = float(density.max()) if zmax is None else zmax
    fig = go.Figure(_sphere_traces(points, labels, density, grid=grid, zmax=zmax,
                                   max_points=max_points, colors=class_colors(np.unique(labels)),
                                   show_scale=True, show_legend=True))
    camera = default_camera(class_centers(points, labels)[1])
    fig.update_layout(scene=_scene(camera), title=title or None, height=560,
                      margin=dict(l=0, r=0, t=40, b=0))
    return fig


def _scene(camera: dict) -> dict:
    return dict(xaxis=_AXIS_OFF, yaxis=_AXIS_OFF, zaxis=_AXIS_OFF, aspectmode="cube",
                camera=camera, dragmode="orbit")


def sphere_pair_figure(base_points, base_labels, tcm_points, tcm_labels, *,
                       kappa: float | None = None, grid: int = 80, max_points: int = 3000,
                       titles: Sequence[str] = PAIR_TITLES,
                       zmax: float | None = None) -> go.Figure:
    """Baseline and +TCM spheres side by side: one kernel κ (default: the baseline's
    ``display_kappa``), one color range (``zmax``: default the larger peak) and one camera."""
    base_points, base_labels = check_points(base_points, base_labels, dims=(3,))
    tcm_points, tcm_labels = check_points(tcm_points, tcm_labels, dims=(3,))
    kappa = display_kappa(base_points, base_labels, grid) if kappa is None else kappa
    densities = [sphere_density(p, y, kappa=kappa, grid=grid)
                 for p, y in ((base_points, base_labels), (tcm_points, tcm_labels))]
    zmax = max(float(d.max()) for d in densities) if zmax is None else zmax
    colors = class_colors(np.unique(np.concatenate([base_labels, tcm_labels])))
    fig = make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "scene"}]],
                        subplot_titles=list(titles), horizontal_spacing=0.01)
    for col, (p, y, d) in enumerate(zip((base_points, tcm_points), (base_labels, tcm_labels), densities), 1):
        for trace in _sphere_traces(p, y, d, grid=grid, zmax=zmax, max_points=max_points,
                                    colors=colors, show_scale=col == 2, show_legend=col == 1):
            fig.add_trace(trace, row=1, col=col)
    camera = default_camera(class_centers(base_points, base_labels)[1],
                            class_centers(tcm_points, tcm_labels)[1])
    fig.update_layout(scene=_scene(camera), scene2=_scene(camera), height=560,
                      margin=dict(l=0, r=0, t=40, b=0),
                      legend=dict(orientation="h", y=-0.02, itemsizing="constant",
                                  title=dict(text="class")))
    fig.update_annotations(font=dict(size=16))
    return fig


# ---------------------------------------------------------------- the circle (2-D embeddings)

def _ring(samples: int = 721) -> np.ndarray:
    theta = np.linspace(0, 2 * np.pi, samples)
    return np.stack([np.cos(theta), np.sin(theta)], axis=1)


def _circle_traces(points, labels, per_class, *, band_scale, colors, show_legend):
    ring = _ring()
    traces = [go.Scatter(x=ring[:, 0], y=ring[:, 1], mode="lines", showlegend=False,
                         line=dict(color="#888", width=1), hoverinfo="skip")]
    classes, centers, lengths = class_centers(points, labels)
    for c, center, rbar in zip(classes, centers, lengths):
        r = 1 + band_scale * per_class[c]
        outer = ring * r[:, None]
        xs = np.concatenate([outer[:, 0], ring[::-1, 0]])
        ys = np.concatenate([outer[:, 1], ring[::-1, 1]])
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", name=str(c),
                                 legendgroup=str(c), showlegend=show_legend,
                                 line=dict(color=colors[c], width=1), fillcolor=rgba(colors[c], 0.35),
                                 hoverinfo="skip"))
        peak = 1 + band_scale * per_class[c].max() + 0.12
        traces.append(go.Scatter(
            x=[0, center[0]], y=[0, center[1]], mode="lines+markers", legendgroup=str(c),
            showlegend=False, line=dict(color=colors[c], width=2.5),
            marker=dict(size=[0, 9], symbol="arrow", angleref="previous", color=colors[c]),
            hovertemplate=f"{c}<br>mean resultant length {rbar:.3f}<extra></extra>"))
        traces.append(go.Scatter(x=[center[0] * peak], y=[center[1] * peak], mode="text",
                                 text=[str(c)], legendgroup=str(c), showlegend=False,
                                 textfont=dict(size=12, color=colors[c]), hoverinfo="skip"))
    return traces


def _circle_axes(fig: go.Figure, reach: float) -> None:
    fig.update_xaxes(visible=False, range=[-reach, reach])
    fig.update_yaxes(visible=False, range=[-reach, reach])


def circle_figure(points2d, labels, *, kappa: float | None = None, title: str = "",
                  band: float = 0.6) -> go.Figure:
    """The article's circle: 2-D embeddings, an arrow to each class center, each class's
    angular density drawn as a band ``r = 1 + c · density(θ)`` whose peak reaches ``1 + band``."""
    return circle_pair_figure(points2d, labels, None, None, kappa=kappa, titles=(title,), band=band)


def circle_pair_figure(base_points, base_labels, tcm_points, tcm_labels, *,
                       kappa: float | None = None, titles: Sequence[str] = PAIR_TITLES,
                       band: float = 0.6) -> go.Figure:
    """Baseline and +TCM circles side by side with equal axes, one κ and one band scale
    (``tcm_points`` None: the baseline alone)."""
    runs = [check_points(base_points, base_labels, dims=(2,))]
    if tcm_points is not None:
        runs.append(check_points(tcm_points, tcm_labels, dims=(2,)))
    kappa = default_kappa(*runs[0]) if kappa is None else kappa
    densities = [class_densities(p, y, _ring(), kappa) for p, y in runs]
    peak = max(float(d.max()) for per_class in densities for d in per_class.values())
    colors = class_colors(np.unique(np.concatenate([y for _, y in runs])))
    fig = make_subplots(rows=1, cols=len(runs), subplot_titles=[t for t in titles[:len(runs)]] or None,
                        horizontal_spacing=0.02)
    for col, ((p, y), per_class) in enumerate(zip(runs, densities), 1):
        for trace in _circle_traces(p, y, per_class, band_scale=band / peak, colors=colors,
                                    show_legend=col == 1):
            fig.add_trace(trace, row=1, col=col)
        fig.update_yaxes(scaleanchor=f"x{'' if col == 1 else col}", scaleratio=1, row=1, col=col)
    _circle_axes(fig, 1 + band + 0.3)
    fig.update_layout(height=520, plot_bgcolor="white", margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(title=dict(text="class")))
    return fig


# ---------------------------------------------------------------- projections (d > 3)

def _projection_traces(xy, labels, colors, legend: set, show_legend: bool):
    traces = []
    for c in colors:
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            continue
        traces.append(go.Scattergl(
            x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=str(c), legendgroup=str(c),
            showlegend=show_legend and c in legend, marker=dict(size=5, color=colors[c], opacity=0.75),
            hovertemplate=f"{c}<extra></extra>"))
    return traces


def _legend_classes(labels) -> set:
    classes, counts = np.unique(labels, return_counts=True)
    return set(classes[np.argsort(-counts, kind="stable")[:LEGEND_LIMIT]])


def projection_figure(xy, labels, title: str = "") -> go.Figure:
    """2-D projection ``xy (n, 2)`` colored by class; the legend names the largest
    ``LEGEND_LIMIT`` classes."""
    return projection_pair_figure(xy, labels, None, None, titles=(title,))


def projection_pair_figure(base_xy, base_labels, tcm_xy, tcm_labels, *,
                           titles: Sequence[str] = PAIR_TITLES) -> go.Figure:
    """Two projections side by side (``tcm_xy`` None: one), class colors shared."""
    runs = [_check_xy(base_xy, base_labels)]
    if tcm_xy is not None:
        runs.append(_check_xy(tcm_xy, tcm_labels))
    all_labels = np.concatenate([y for _, y in runs])
    colors, legend = class_colors(np.unique(all_labels)), _legend_classes(all_labels)
    fig = make_subplots(rows=1, cols=len(runs), subplot_titles=list(titles[:len(runs)]),
                        horizontal_spacing=0.04)
    for col, (xy, y) in enumerate(runs, 1):
        for trace in _projection_traces(xy, y, colors, legend, col == 1):
            fig.add_trace(trace, row=1, col=col)
    fig.update_xaxes(showticklabels=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, zeroline=False)
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="white",
                      legend=dict(title=dict(text=f"class (largest {LEGEND_LIMIT})"
                                             if len(colors) > LEGEND_LIMIT else "class")))
    return fig


def _check_xy(xy, labels):
    xy = as_array(xy, "a projection")
    if xy.ndim != 2 or xy.shape[1] != 2 or not np.isfinite(xy).all():
        raise TCMError(f"a projection must be a finite (n, 2) array; got shape {xy.shape}")
    check_labels(labels, len(xy))
    return xy.astype(np.float64), as_array(labels, "labels")
