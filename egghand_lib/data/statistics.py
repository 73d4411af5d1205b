"""Training-split statistics: the min-max bounds the normaliser maps to [-1, 1] (docs/conventions.md).

Computed once, after canonicalisation, over every window of the training episodes, from valid joints
only: the state (138 numbers per observed frame: 126 joint coordinates, then the 12 numbers of the 3x4
canonical -> camera matrix) and the action (126 target joint coordinates).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from egghand_lib.batch import ACTION_DIM, STATE_DIM, NormStats
from egghand_lib.data.episodes import Episode
from egghand_lib.data.windows import make_windows


class _RunningBounds:
    """Per-dimension min / max over batches of rows, ignoring masked-out entries."""

    def __init__(self, dim: int):
        self.lo, self.hi = np.full(dim, np.inf), np.full(dim, -np.inf)

    def update(self, values: np.ndarray, mask: np.ndarray | None = None) -> None:
        """values (R, dim); mask (R, dim) bool, True = counted (None: all)."""
        if mask is None:
            lo, hi = values.min(0, initial=np.inf), values.max(0, initial=-np.inf)
        else:
            lo = np.where(mask, values, np.inf).min(0, initial=np.inf)
            hi = np.where(mask, values, -np.inf).max(0, initial=-np.inf)
        self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(self.hi, hi)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(min, max) float32; a dimension that never had a value gets min = max = 0."""
        empty = ~np.isfinite(self.lo) | ~np.isfinite(self.hi)
        lo, hi = np.where(empty, 0.0, self.lo), np.where(empty, 0.0, self.hi)
        return torch.as_tensor(lo, dtype=torch.float32), torch.as_tensor(hi, dtype=torch.float32)


def window_bounds(windows: Iterable[dict[str, np.ndarray]]) -> NormStats:
    """Min-max NormStats of window arrays (``make_windows`` outputs or ``WindowDataset.arrays()``).

    Each item holds past_joints (N, 20, 42, 3), past_valid (N, 20, 42), past_extrinsics (N, 20, 3, 4),
    future_joints (N, 10, 42, 3) and future_valid (N, 10, 42).
    """
    joints_dim = ACTION_DIM
    state, action = _RunningBounds(STATE_DIM), _RunningBounds(ACTION_DIM)
    for w in windows:
        pj = np.asarray(w["past_joints"]).reshape(-1, joints_dim)
        pm = np.repeat(np.asarray(w["past_valid"], bool).reshape(-1, joints_dim // 3), 3, axis=1)
        cams = np.asarray(w["past_extrinsics"]).reshape(-1, STATE_DIM - joints_dim)
        state.update(np.concatenate([pj, cams], 1), np.concatenate([pm, np.ones(cams.shape, bool)], 1))
        fj = np.asarray(w["future_joints"]).reshape(-1, joints_dim)
        fm = np.repeat(np.asarray(w["future_valid"], bool).reshape(-1, joints_dim // 3), 3, axis=1)
        action.update(fj, fm)
    stats = NormStats(*state.result(), *action.result())
    for name in ("state_min", "state_max", "action_min", "action_max"):
        values = getattr(stats, name)
        if not torch.isfinite(values).all():  # validated inputs never give this: refuse rather than store it
            d = int(torch.nonzero(~torch.isfinite(values))[0])
            raise ValueError(f"statistics: {name}[{d}] is {float(values[d])} (non-finite input values)")
    return stats


def compute_stats(episodes: list[Episode], protocol: str = "future", up=(0.0, 0.0, 1.0),
                  edges: str = "mask") -> NormStats:
    """Min-max NormStats over all windows of ``episodes`` (give the TRAINING split), valid joints only.

    state (138,): observed joints (126, valid only) then the flattened 3x4 canonical camera pose (12);
    action (126,): target joints, valid only. A dimension with no valid value gets min = max = 0.
    """
    return window_bounds(make_windows(ep, protocol, up, edges) for ep in episodes)
