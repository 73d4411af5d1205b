"""What the viz tests draw: a two-hand pose, a canonicalised window around it, the finite points of a trace."""

from __future__ import annotations

import numpy as np
import torch

from egghand_lib.geometry import canonical_transform, invert_rigid, look_at_extrinsics


def two_hands(shift=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A plausible open two-hand pose (42, 3) in front of a camera looking along +x, z up."""
    J = np.zeros((42, 3))
    for h, side in ((0, -1.0), (1, 1.0)):
        base = h * 21
        J[base] = (0.35, side * 0.12, -0.25)
        for f in range(5):
            spread = (f - 2) * 0.018
            for k in range(4):
                J[base + 1 + 4 * f + k] = J[base] + (0.04 + 0.025 * k, side * spread, 0.004 * k)
    return J + np.asarray(shift)


def window(n_obs=20, n_tgt=10, seed=0) -> dict:
    """A window dict in the batch layout, canonicalised from a world camera that looks at the hands."""
    rng = np.random.default_rng(seed)
    eye = np.array([1.0, 2.0, 1.5])
    world_E = look_at_extrinsics(eye, eye + np.array([0.8, 0.6, -0.4]))
    T = canonical_transform(world_E)  # world -> canonical
    to_world = invert_rigid(T)
    past = np.stack([two_hands((0.01 * t, 0, 0)) for t in range(n_obs)])
    fut = np.stack([two_hands((0.01 * (n_obs + t), 0.005 * t, 0)) for t in range(n_tgt)])
    cam_E = np.stack([(np.concatenate([world_E, [[0, 0, 0, 1]]]) @ to_world)[:3] for _ in range(n_obs + n_tgt)])
    return {
        "past_joints": torch.tensor(past, dtype=torch.float32),
        "past_valid": torch.ones(n_obs, 42, dtype=torch.bool),
        "past_extrinsics": torch.tensor(cam_E[:n_obs], dtype=torch.float32),
        "future_joints": torch.tensor(fut, dtype=torch.float32),
        "future_valid": torch.ones(n_tgt, 42, dtype=torch.bool),
        "future_extrinsics": torch.tensor(cam_E[n_obs:], dtype=torch.float32),
        "frames": torch.tensor(rng.integers(0, 255, (4, 3, 64, 80)), dtype=torch.uint8),
        "canonical_T": torch.tensor(T, dtype=torch.float32),
        "task": "pick up the red cup",
    }


def finite_points(trace) -> np.ndarray:
    """(N, 3) finite points of a plotly 3D trace (NaN separators dropped)."""
    P = np.stack([np.asarray(trace.x, float), np.asarray(trace.y, float), np.asarray(trace.z, float)], 1)
    return P[np.isfinite(P).all(1)]
