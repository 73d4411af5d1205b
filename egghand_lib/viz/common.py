"""What every back-end of ``egghand_lib.viz`` shares: the colours, array conversion, joint checks, skeleton lines.

Joints are (..., 42, 3) metres in the layout of ``egghand_lib.skeleton`` with a validity mask (..., 42) beside
them; a joint whose mask is False (or whose coordinates are not finite) is never drawn, nor is a bone touching it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from egghand_lib.skeleton import BONES, NUM_JOINTS

# One colour per role, used by every figure so the pictures read the same everywhere.
COLORS: dict[str, str] = {
    "observed": "#1f77b4",  # blue
    "ground truth": "#2ca02c",  # green
    "forecast": "#d62728",  # red
    "camera": "#555555",  # grey
    "hypothesis": "#ff7f0e",  # orange
}
METHOD_COLORS: dict[str, str] = {"Static": "#7f7f7f", "CVM": "#9467bd", "LastPose": "#17becf", "EggHand": "#d62728"}
COLOR_CYCLE = ("#1f77b4", "#2ca02c", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#9467bd", "#7f7f7f")


def as_numpy(x: Any) -> np.ndarray:
    """numpy view of an array or tensor (detached, on the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def check_joints(name: str, joints: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(joints (..., 42, 3) float64, drawable mask (..., 42)); valid None means all valid. Errors name ``name``."""
    joints = as_numpy(joints).astype(np.float64)
    if joints.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"{name}: expected joints of shape (..., {NUM_JOINTS}, 3), got {joints.shape}")
    valid = np.ones(joints.shape[:-1], dtype=bool) if valid is None else as_numpy(valid).astype(bool)
    if valid.shape != joints.shape[:-1]:
        raise ValueError(f"{name}: validity mask of shape {valid.shape} does not match joints {joints.shape}")
    # Non-finite coordinates cannot be drawn: treat them as missing.
    return joints, valid & np.isfinite(joints).all(-1)


def method_color(name: str, i: int = 0) -> str:
    """Colour of a method or role name (stable across figures), else the i-th colour of a cycle."""
    return COLORS.get(name) or METHOD_COLORS.get(name) or COLOR_CYCLE[i % len(COLOR_CYCLE)]


def rgba(color: str | Sequence[int], alpha: int = 255) -> np.ndarray:
    """(4,) uint8 RGBA of a "#rrggbb" string or an RGB / RGBA sequence."""
    if isinstance(color, str):
        c = color.lstrip("#")
        return np.array([int(c[i:i + 2], 16) for i in (0, 2, 4)] + [alpha], dtype=np.uint8)
    c = list(color)
    return np.array(c + [alpha] if len(c) == 3 else c, dtype=np.uint8)


def skeleton_segments(joints: Any, valid: Any | None = None) -> np.ndarray:
    """Polyline points of one skeleton for a plotly line trace, NaN-separated.

    joints: (42, 3); valid: (42,). Every bone whose two joints are valid becomes ``[parent, child, NaN]``;
    a valid joint none of whose bones is drawn becomes ``[joint, NaN]`` so it still shows as a marker.
    Returns (M, 3) with NaN rows as separators (plotly breaks lines at NaN / None).
    """
    joints, valid = check_joints("joints", joints, valid)
    if joints.ndim != 2:
        raise ValueError(f"joints: expected one skeleton (42, 3), got {joints.shape}")
    gap = np.full(3, np.nan)
    rows: list[np.ndarray] = []
    drawn = np.zeros(NUM_JOINTS, dtype=bool)
    for p, c in BONES:
        if valid[p] and valid[c]:
            rows += [joints[p], joints[c], gap]
            drawn[p] = drawn[c] = True
    for j in np.flatnonzero(valid & ~drawn):
        rows += [joints[j], gap]
    return np.stack(rows) if rows else np.zeros((0, 3))

