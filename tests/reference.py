"""Slow, obviously-correct implementations of METHOD.md, written independently of tcm_core
(float64 numpy, the full n x n distance matrix, loops over classes)."""

import math

import numpy as np


def pair_table(x, y, normalize=True):
    x = np.asarray(x, dtype=np.float64)
    if normalize:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    a, b = np.triu_indices(len(x), 1)
    d = np.linalg.norm(x[a] - x[b], axis=1)
    return a, b, d


def calibration_range(x, y, far_range=(1e-3, 1e-1), distance_range=None):
    if distance_range is not None:
        return tuple(distance_range)
    y = np.asarray(y)
    a, b, d = pair_table(x, y)
    neg = d[y[a] != y[b]]
    return tuple(np.quantile(neg, far_range))


def utility_table(x, y, thresholds, beta=1.0):
    """(classes, U (T, K)) by direct counting per class."""
    y = np.asarray(y)
    a, b, d = pair_table(x, y)
    classes = [c for c in np.unique(y) if (y == c).sum() >= 2]
    rows = []
    for c in classes:
        pos = d[(y[a] == c) & (y[b] == c)]
        neg = d[(y[a] == c) != (y[b] == c)]
        u = []
        for t in thresholds:
            tpr = np.mean(pos <= t)
            tnr = np.mean(neg > t)
            den = beta**2 * tnr + tpr
            u.append(0.0 if den == 0 else (1 + beta**2) * tpr * tnr / den)
        rows.append(u)
    return np.array(classes), np.array(rows)


def opis(u):
    return float(np.mean([np.mean([(u[c, k] - u[:, k].mean()) ** 2 for c in range(len(u))])
                          for k in range(u.shape[1])]))


def eps_opis(u, eps=0.1):
    order = sorted(range(len(u)), key=lambda c: u[c].mean())
    w = order[: math.ceil(round(eps * len(u), 9))]
    r = [c for c in range(len(u)) if c not in w]
    return float(np.mean((u[w].mean(axis=0) - u[r].mean(axis=0)) ** 2))


def recall_at_k(x, y, k=1):
    x = np.asarray(x, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = np.asarray(y)
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    hits = 0
    for i in range(len(x)):
        nn = np.argsort(-s[i], kind="stable")[:k]
        hits += bool((y[nn] == y[i]).any())
    return hits / len(x)


def evaluate(x, y, far_range=(1e-3, 1e-1), distance_range=None, k=201, beta=1.0, eps=0.1):
    t_min, t_max = calibration_range(x, y, far_range, distance_range)
    _, u = utility_table(x, y, np.linspace(t_min, t_max, k), beta)
    return dict(t_min=t_min, t_max=t_max, opis=opis(u), eps_opis=eps_opis(u, eps),
                recall_at_1=recall_at_k(x, y, 1), utility=u)
