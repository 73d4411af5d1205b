"""Non-learned baselines of paper Sec. 4.2 (docs/conventions.md, "Baselines"): Static and constant velocity (CVM), plus
LastPose (each joint held where it was last seen), not in the paper but the bar to clear on data where
hands are often still.

All predict (N, horizon, 42, 3) canonical joints from the observed window and return the input's array
type (numpy float32, or a torch tensor with the input's dtype and device). Target frame h of a protocol
is at offset ``first_offset + h`` (10 fps steps) from the current frame, the last observed one:
``first_offset=1`` for the ``future`` protocol (+1..+10), ``0`` for ``egghand-code`` (0..+9).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from egghand_lib._checks import as_bool_mask, check_finite_where_valid, check_joints, check_nonempty, to_numpy
from egghand_lib.skeleton import JOINTS_PER_HAND, NUM_JOINTS

Array = Any  # np.ndarray | torch.Tensor


def _checked(x: Array, valid: Array, name: str, valid_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, 42, 3) float64 and (N, T, 42) bool numpy, invalid coordinates zeroed."""
    x_np = to_numpy(x, name, np.float64)
    check_joints(x_np, name, 4)
    check_nonempty(x_np, name, dims=2)
    v = as_bool_mask(to_numpy(valid, valid_name), valid_name, x_np.shape[:-1])
    check_finite_where_valid(x_np, v, name)
    return np.where(v[..., None], x_np, 0.0), v


def _check_horizon(horizon: int, first_offset: int) -> None:
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon: expected a positive integer, got {horizon!r}")
    if int(first_offset) != first_offset:
        raise ValueError(f"first_offset: expected an integer, got {first_offset!r}")


def _like(out: np.ndarray, ref: Array) -> Array:
    """Return ``out`` in ``ref``'s array type: torch (same dtype / device) or numpy float32."""
    if isinstance(ref, torch.Tensor):
        dtype = ref.dtype if ref.dtype.is_floating_point else torch.float32
        return torch.as_tensor(out, dtype=dtype, device=ref.device)
    return out.astype(np.float32)


class StaticPose:
    """The mean canonical pose of the training split, repeated for every target frame.

    ``fit`` averages every joint over its valid (sample, frame) entries. A joint that is never valid
    falls back to the mean of its hand's valid entries (all its joints pooled), and a hand that is never
    valid to the origin (0, 0, 0); ``joint_counts_`` tells which joints had data.
    """

    def __init__(self) -> None:
        self.pose_: np.ndarray | None = None  # (42, 3) float64
        self.joint_counts_: np.ndarray | None = None  # (42,) int64

    def fit(self, poses: Array, valid: Array) -> StaticPose:
        """poses (N, T, 42, 3), valid (N, T, 42) -> self. Any T (past or target frames)."""
        x, v = _checked(poses, valid, "poses", "valid")
        counts = v.sum((0, 1))  # (42,)
        sums = x.sum((0, 1))  # invalid entries are already 0
        pose = sums / np.maximum(counts, 1)[:, None]
        for h in range(2):  # fallback for joints without data: their hand's mean, else 0
            hand = slice(h * JOINTS_PER_HAND, (h + 1) * JOINTS_PER_HAND)
            hand_count = counts[hand].sum()
            hand_mean = sums[hand].sum(0) / hand_count if hand_count > 0 else np.zeros(3)
            missing = counts[hand] == 0
            pose[hand][missing] = hand_mean
        self.pose_, self.joint_counts_ = pose, counts
        return self

    def predict(self, past: Array, past_valid: Array | None = None, horizon: int = 10, first_offset: int = 1) -> Array:
        """(N, horizon, 42, 3): the fitted pose for every sample and frame. past (N, T, 42, 3) gives N
        and the output type; past_valid is checked when given but not needed."""
        if self.pose_ is None:
            raise RuntimeError("StaticPose.predict: call fit(poses, valid) first")
        _check_horizon(horizon, first_offset)
        past_np = to_numpy(past, "past")
        check_joints(past_np, "past", 4)
        check_nonempty(past_np, "past", dims=1)
        if past_valid is not None:
            as_bool_mask(to_numpy(past_valid, "past_valid"), "past_valid", past_np.shape[:-1])
        out = np.broadcast_to(self.pose_, (past_np.shape[0], int(horizon), NUM_JOINTS, 3))
        return _like(np.array(out), past)


class ConstantVelocity:
    """Per-joint constant-velocity extrapolation from the last two valid observed positions.

    Observed frame i of T sits at offset i - (T - 1). With a joint's last valid observation x_a at
    frame a and the one before it x_b at frame b < a (any gap), the velocity is (x_a - x_b) / (a - b) per
    frame and the prediction at offset k is x_a + v * (k - (a - (T - 1))). A joint with one valid
    observation holds it. A joint never observed takes ``static``'s pose when a fitted StaticPose is
    given; otherwise the mean of the last valid positions of the same hand's observed joints in that
    sample, and the origin if that hand was not observed at all (never NaN).
    """

    extrapolate = True  # False: LastPose

    def __init__(self, static: StaticPose | None = None) -> None:
        if static is not None and static.pose_ is None:
            raise ValueError("static: the StaticPose is not fitted; call fit(poses, valid) first")
        self.static = static

    def predict(self, past: Array, past_valid: Array, horizon: int = 10, first_offset: int = 1) -> Array:
        """past (N, T, 42, 3), past_valid (N, T, 42) -> (N, horizon, 42, 3)."""
        _check_horizon(horizon, first_offset)
        x, v = _checked(past, past_valid, "past", "past_valid")
        n, t = x.shape[:2]
        frame = np.arange(t)[None, :, None]  # (1, T, 1)

        a = np.where(v, frame, -1).max(1)  # (N, 42) last valid frame, -1 if none
        b = np.where(v & (frame < a[:, None]), frame, -1).max(1)  # the valid frame before it
        x_a = np.take_along_axis(x, np.maximum(a, 0)[:, None, :, None], axis=1)[:, 0]  # (N, 42, 3)
        x_b = np.take_along_axis(x, np.maximum(b, 0)[:, None, :, None], axis=1)[:, 0]
        moving = (b >= 0)[..., None] & self.extrapolate
        vel = np.where(moving, (x_a - x_b) / np.maximum(a - b, 1)[..., None], 0.0)

        offsets = first_offset + np.arange(int(horizon))  # (H,)
        steps = offsets[None, :, None] - (a - (t - 1))[:, None, :]  # (N, H, 42) frames since x_a
        out = x_a[:, None] + vel[:, None] * steps[..., None]

        seen = a >= 0  # (N, 42)
        if not seen.all():
            out = np.where(seen[:, None, :, None], out, self._fallback(x_a, seen)[:, None])
        return _like(out, past)

    def _fallback(self, x_a: np.ndarray, seen: np.ndarray) -> np.ndarray:
        """(N, 42, 3) positions for joints never observed in their sample."""
        if self.static is not None:
            return np.broadcast_to(self.static.pose_, x_a.shape)
        out = np.zeros_like(x_a)
        for h in range(2):
            hand = slice(h * JOINTS_PER_HAND, (h + 1) * JOINTS_PER_HAND)
            count = seen[:, hand].sum(1)  # (N,)
            mean = (x_a[:, hand] * seen[:, hand, None]).sum(1) / np.maximum(count, 1)[:, None]
            out[:, hand] = mean[:, None]  # 0 where the hand was never seen
        return out


class LastPose(ConstantVelocity):
    """Each joint's last valid observed position, held for every target frame (CVM with zero velocity);
    never-observed joints fall back as in ConstantVelocity."""

    extrapolate = False
