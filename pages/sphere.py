"""Embeddings on the sphere: the ArcFace toy's picture (METHOD.md, "The ArcFace toy"). 3-D runs
on the sphere with class densities painted on it, 2-D runs on the circle, higher dimensions as
PCA at once and UMAP (computed in the background) when ready."""

from pathlib import Path

import numpy as np
import streamlit as st

from pages._common import load_run, require_pair, show_error
from pages._links import linked
from pages._exports import figure_downloads
from tcm_core.geometry.density import default_kappa
from tcm_core.geometry.projection import pca_2d
from tcm_core.geometry.sphere import display_kappa
from tcm_core.tasks.umap import UmapJob, warm_up_umap
from tcm_core.viz.sphere import (circle_figure, circle_pair_figure, projection_figure, projection_pair_figure,
                                 sphere_figure, sphere_pair_figure)

KAPPAS = sorted({float(f"{k:.2g}") for k in np.geomspace(1, 2000, 34)})

st.title("Embeddings on the sphere")
st.markdown(
    "ArcFace puts each class around one **direction**: here are the test embeddings of both runs "
    "on the unit sphere (3-D) or circle (2-D), each class's kernel density drawn around its center. "
    "With **TCM** the clusters should be more compact and the gaps between them clearer. Drag to "
    "rotate; both spheres start from the same camera and share one color scale.")


@st.cache_data(max_entries=16, show_spinner="Painting the class densities ...")
def _figure(base: str, tcm: str | None, kappa: float, n_points: int):
    _, _, bx, by = load_run(Path(base))
    if tcm is None:  # one uploaded run
        if bx.shape[1] == 3:
            return sphere_figure(bx, by, kappa=kappa, max_points=n_points)
        return circle_figure(bx, by, kappa=kappa)
    _, _, tx, ty = load_run(Path(tcm))
    if bx.shape[1] == 3:
        return sphere_pair_figure(bx, by, tx, ty, kappa=kappa, max_points=n_points)
    return circle_pair_figure(bx, by, tx, ty, kappa=kappa)


@st.cache_resource(max_entries=8, show_spinner=False)
def _umap_job(path: str) -> UmapJob:
    _, _, x, y = load_run(Path(path))
    return UmapJob(x, y)


def _drawable(pair, x, y):
    key = f"kappa::{pair.root}"
    rule = default_kappa(x, y)
    start = display_kappa(x, y) if x.shape[1] == 3 else rule
    default = max([k for k in KAPPAS if k <= start] or KAPPAS[:1])
    linked("kappa", key, options=KAPPAS)
    linked("points", "sphere_points", kind=int, low=0, high=min(len(x), 10_000))
    c1, c2 = st.columns(2)
    kappa = c1.select_slider("Kernel concentration κ (larger: narrower kernel)", KAPPAS,
                             value=default, key=key, format_func=lambda k: f"{k:g}")
    n_points = 0
    if x.shape[1] == 3:
        n_points = c2.slider("Points drawn per sphere", 0, min(len(x), 10_000), min(len(x), 1500),
                             100, key="sphere_points")
    st.plotly_chart(fig := _figure(str(pair.baseline), pair.tcm and str(pair.tcm), kappa, n_points), width="stretch")
    figure_downloads(fig, "embeddings_sphere" if x.shape[1] == 3 else "embeddings_circle")
    shape = "sphere" if x.shape[1] == 3 else "circle"
    st.caption(f"{len(x):,} test embeddings per run on the unit {shape}, {len(np.unique(y))} classes. "
               f"von Mises–Fisher kernel, κ = {kappa:g} (rule of thumb for these clusters: {rule:.3g}"
               + (f"; capped at {start:.3g} to start, the narrowest kernel the sphere's grid draws cleanly"
                  if start < rule else "") + ")." + (" Color: the largest class density at each place."
                                                     if x.shape[1] == 3 else ""))


def _projection(pair, n: int, polling: bool):
    paths = [p for p in (pair.baseline, pair.tcm) if p is not None]
    jobs = [_umap_job(str(p)) for p in paths]
    failed = next((j.error for j in jobs if j.error is not None), None)
    ready = all(j.done for j in jobs) and failed is None
    if ready and polling:
        st.rerun()  # the whole page, so the fragment stops polling
    if ready:
        xy = [j.result for j in jobs]
        what = "UMAP (cosine metric, seed 0)"
    else:
        xy = [pca_2d(load_run(p)[2])[j.indices] for p, j in zip(paths, jobs)]
        what = "PCA (first two components)"
    fig = (projection_pair_figure(xy[0], jobs[0].labels, xy[1], jobs[1].labels) if len(jobs) == 2
           else projection_figure(xy[0], jobs[0].labels, title=pair.name))
    st.plotly_chart(fig, width="stretch")
    if not polling:  # no export buttons while the fragment redraws every 2 s
        figure_downloads(fig, "embeddings_umap" if ready else "embeddings_pca")
    note = "" if ready or failed else " UMAP is being computed in the background; the view switches when it is ready."
    st.caption(f"{what} of a class-stratified sample of {len(jobs[0].indices):,} of {n:,} "
               f"embeddings per run.{note}")
    if failed is not None:
        show_error(failed)


pair = require_pair(single=True)
warm_up_umap()  # numba compiles UMAP once per server, in the background, before it is needed
try:
    _, _, x, y = load_run(pair.baseline)
    if x.shape[1] <= 3:
        _drawable(pair, x, y)
    else:
        st.info(f"These embeddings have {x.shape[1]} dimensions: shown projected to 2-D.")
        jobs = [_umap_job(str(p)) for p in (pair.baseline, pair.tcm) if p is not None]
        polling = not all(j.done for j in jobs)
        st.fragment(_projection, run_every=2.0 if polling else None)(pair, len(x), polling)
except Exception as exc:  # shown, never a traceback
    show_error(exc)
