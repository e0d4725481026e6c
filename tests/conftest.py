import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def six_points():
    """METHOD.md's worked example: six points on the unit circle, three classes."""
    angles = np.deg2rad([0, 40, 60, 150, 200, 210])
    return np.stack([np.cos(angles), np.sin(angles)], axis=1), np.array([0, 0, 1, 1, 2, 2])


def clustered(seed, n=300, classes=10, dim=8, spread=(0.3, 1.5)):
    """Gaussian clusters whose spread differs per class (so thresholds are inconsistent)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, dim))
    scale = rng.uniform(*spread, size=classes)
    return centres[y] + scale[y, None] * rng.normal(size=(n, dim)), y
