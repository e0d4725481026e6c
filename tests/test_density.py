"""vMF kernel densities on the circle and sphere (tcm_core.density), the sphere viz and the
PCA / UMAP projections: normalization, peaks, centers, the bandwidth rule, bad input."""

import numpy as np
import pytest
from scipy.special import i0e

from tcm_core.geometry.density import class_centers, class_densities, default_kappa, vmf_kde
from tcm_core.errors import TCMError
from tcm_core.geometry.projection import pca_2d, stratified_sample
from tcm_core.tasks.base import TaskStatus
from tcm_core.tasks.umap import UmapJob, warm_up_umap
from tcm_core.viz.sphere import (circle_figure, fibonacci_sphere, projection_figure,
                                 sphere_figure, sphere_pair_figure)


def circle(angles):
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def lat_long(n=800):
    """Midpoint lat-long quadrature on S^2: sites (m, 3) and weights sin(θ) dθ dφ (sum 4π)."""
    theta = (np.arange(n) + 0.5) * np.pi / n
    phi = (np.arange(2 * n) + 0.5) * np.pi / n
    t, p = np.meshgrid(theta, phi, indexing="ij")
    sites = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1).reshape(-1, 3)
    return sites, (np.sin(t) * (np.pi / n) ** 2).ravel()


def random_directions(seed, n, dim, spread):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=dim) + spread * rng.normal(size=(n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kappa", [1.0, 20.0, 500.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_circle_density_integrates_to_one(kappa, seed):
    points = random_directions(seed, 7 + seed, 2, spread=0.5 * seed)
    theta = (np.arange(100_000) + 0.5) * 2 * np.pi / 100_000  # midpoint rule, step 2π/N
    total = vmf_kde(points, circle(theta), kappa).sum() * 2 * np.pi / 100_000
    assert total == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("kappa", [1.0, 20.0, 500.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sphere_density_integrates_to_one(kappa, seed):
    points = random_directions(seed, 5 + seed, 3, spread=0.3 * seed)
    sites, weights = lat_long()
    assert weights.sum() == pytest.approx(4 * np.pi, rel=1e-5)
    total = vmf_kde(points, sites, kappa) @ weights
    assert total == pytest.approx(1.0, rel=1e-2)


def test_small_and_large_kappa_limits():
    # κ -> 0: the uniform density, 1/(2π) on the circle and 1/(4π) on the sphere
    assert vmf_kde(np.eye(2)[:1], np.eye(2), 1e-9) == pytest.approx([1 / (2 * np.pi)] * 2)
    assert vmf_kde(np.eye(3)[:1], np.eye(3), 0.0) == pytest.approx([1 / (4 * np.pi)] * 3)
    # d = 3 at the mean direction: κ / (4π sinh κ) · e^κ = κ / (2π (1 - e^{-2κ})), finite at κ = 1e4
    assert vmf_kde(np.eye(3)[:1], np.eye(3)[:1], 1e4)[0] == pytest.approx(1e4 / (2 * np.pi))
    # d = 2 at κ = 1: e^1 / (2π I0(1)), I0(1) = 1.2660658777520082
    assert vmf_kde(np.eye(2)[:1], np.eye(2)[:1], 1.0)[0] == pytest.approx(np.e / (2 * np.pi * 1.2660658777520082))


@pytest.mark.parametrize("dim", [2, 3])
def test_density_peaks_at_a_points_direction(dim):
    point = random_directions(4, 1, dim, 0)
    sites = circle(np.linspace(0, 2 * np.pi, 3601)) if dim == 2 else fibonacci_sphere(20_000)
    sites = np.concatenate([sites, point])
    density = vmf_kde(point, sites, 50.0)
    # float32 cosines: sites within ~1e-3 rad of the point may tie with it
    assert density[-1] == pytest.approx(density.max(), rel=1e-5)
    assert sites[np.argmax(density)] @ point[0] > np.cos(2e-3)
    assert density[-1] == pytest.approx(50 / (2 * np.pi * (1 - np.exp(-100))) if dim == 3
                                        else 1 / (2 * np.pi * i0e(50.0)), rel=1e-4)


def test_chunked_matches_direct_sum():
    points, at = random_directions(5, 3000, 3, 2.0), fibonacci_sphere(1500)
    direct = (30 / (4 * np.pi * np.sinh(30))) * np.exp(30 * at @ points.T).mean(axis=1)
    np.testing.assert_allclose(vmf_kde(points, at, 30.0), direct, rtol=1e-4)


def test_class_centers_on_hand_data():
    # class a: 0° and 90° -> mean (0.5, 0.5), center 45°, R̄ = √0.5; class b: 180° twice -> R̄ = 1
    points = circle(np.deg2rad([0, 90, 180, 180]))
    classes, centers, lengths = class_centers(points, ["a", "a", "b", "b"])
    assert list(classes) == ["a", "b"]
    np.testing.assert_allclose(centers, [[np.sqrt(0.5), np.sqrt(0.5)], [-1, 0]], atol=1e-12)
    np.testing.assert_allclose(lengths, [np.sqrt(0.5), 1.0])


def test_class_densities_one_per_class_each_normalized():
    points = circle(np.deg2rad([0, 10, 180, 190]))
    theta = (np.arange(20_000) + 0.5) * 2 * np.pi / 20_000
    per_class = class_densities(points, [0, 0, 1, 1], circle(theta), 20.0)
    assert set(per_class) == {0, 1}
    for d in per_class.values():
        assert d.sum() * 2 * np.pi / 20_000 == pytest.approx(1.0, rel=1e-3)
    assert per_class[0][0] > per_class[1][0]  # site 0° is class 0's


@pytest.mark.parametrize("dim", [2, 3])
def test_default_kappa_grows_for_tighter_clusters(dim):
    loose, tight = random_directions(6, 400, dim, 0.4), random_directions(6, 400, dim, 0.05)
    assert default_kappa(tight) > 3 * default_kappa(loose)
    labels = np.repeat([0, 1], 200)
    two = np.concatenate([tight[:200], -tight[200:]])  # two tight, opposite classes
    assert default_kappa(two, labels) > 10 * default_kappa(two)  # pooled, they look spread


@pytest.mark.parametrize("call", [
    lambda: vmf_kde(np.ones((3, 4)), np.ones((2, 4)), 1.0),  # d = 4
    lambda: vmf_kde(np.ones((3, 3)), np.ones((2, 2)), 1.0),  # dimensions differ
    lambda: vmf_kde(np.zeros((3, 3)), np.ones((2, 3)), 1.0),  # zero vector
    lambda: vmf_kde(np.ones((3, 3)), np.ones((2, 3)), -1.0),  # kappa < 0
    lambda: vmf_kde(np.ones((0, 3)), np.ones((2, 3)), 1.0),  # no points
    lambda: class_centers(np.ones((3, 3)), [0, 1]),  # labels too short
    lambda: default_kappa(np.ones((1, 3))),
])
def test_bad_input_says_what_is_wrong(call):
    with pytest.raises(TCMError):
        call()


def test_sphere_figures_share_color_range_and_camera():
    a, b = random_directions(7, 300, 3, 0.2), random_directions(8, 300, 3, 0.1)
    labels = np.repeat([0, 1, 2], 100)
    fig = sphere_pair_figure(a, labels, b, labels, grid=30, max_points=90)
    surfaces = [t for t in fig.data if t.type == "surface"]
    assert len(surfaces) == 2 and surfaces[0].cmax == surfaces[1].cmax > 0
    assert fig.layout.scene.camera == fig.layout.scene2.camera
    assert sum(len(t.x) for t in fig.data if t.type == "scatter3d" and t.mode == "markers") == 180
    one = sphere_figure(a, labels, kappa=10.0, grid=30, zmax=5.0)
    assert one.data[0].cmax == 5.0 and one.data[0].surfacecolor.shape == (30, 60)


def test_circle_and_projection_figures():
    points, labels = circle(np.deg2rad([0, 10, 180, 190])), np.array(["a", "a", "b", "b"])
    fig = circle_figure(points, labels, kappa=20.0)
    assert {t.name for t in fig.data if t.fill == "toself"} == {"a", "b"}
    assert fig.layout.yaxis.scaleanchor == "x"
    many = np.repeat(np.arange(30), 3)
    proj = projection_figure(np.random.default_rng(0).normal(size=(90, 2)), many)
    assert sum(bool(t.showlegend) for t in proj.data) == 20 and len(proj.data) == 30


def test_pca_and_stratified_sample():
    x = np.zeros((50, 5))
    x[:, 2] = np.linspace(-1, 1, 50)  # all variance on one axis
    xy = pca_2d(x)
    assert xy.shape == (50, 2) and np.allclose(np.abs(xy[:, 0]), np.abs(x[:, 2])) and np.allclose(xy[:, 1], 0)
    labels = np.repeat([0, 1, 2, 3], [400, 300, 200, 100])
    keep = stratified_sample(labels, 100, seed=1)
    assert len(keep) == 100 and np.all(np.diff(keep) > 0)
    assert np.bincount(labels[keep]).tolist() == [40, 30, 20, 10]
    np.testing.assert_array_equal(keep, stratified_sample(labels, 100, seed=1))


def test_umap_job_runs_in_the_background():
    x, y = random_directions(9, 120, 8, 1.0), np.repeat([0, 1, 2], 40)
    job = UmapJob(x, y, max_points=90)
    assert len(job.indices) == 90
    assert job.wait(240) and job.error is None and job.done
    assert job.snapshot().status == TaskStatus.FINISHED
    assert job.result.shape == (90, 2) and np.all(np.isfinite(job.result))
    warm = warm_up_umap()
    assert warm is warm_up_umap() and warm.wait(240) and warm.error is None  # started once
    with pytest.raises(TCMError):
        UmapJob(x[:3], y[:3])
