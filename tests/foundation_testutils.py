"""Tiny shared helpers for the foundation tests (skeleton, geometry, egomotion, metrics, losses, baselines)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import settings

# Modest example counts and no deadline: the whole foundation suite must stay fast on 2 shared cores.
FAST = settings(max_examples=25, deadline=None)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3x3 rotation (from a random unit quaternion)."""
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def random_forecast(rng: np.random.Generator, n: int = 3, t: int = 4, p_valid: float = 0.7):
    """(pred, gt, valid): gt random hands, pred a noisy copy, valid a random mask (N, T, 42)."""
    gt = rng.normal(scale=0.3, size=(n, t, 42, 3))
    pred = gt + rng.normal(scale=0.05, size=gt.shape)
    valid = rng.random((n, t, 42)) < p_valid
    return pred, gt, valid


def fill_invalid(x: np.ndarray, valid: np.ndarray, value: float) -> np.ndarray:
    """A copy of joints x (..., 42, 3) with every invalid joint's coordinates set to ``value``."""
    return np.where(valid[..., None], x, value)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run a test module's tiny torch ops on one thread (2 shared cores: threads only spin), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
