"""The window batch: the one structure that flows from the data pipeline to models, losses and metrics.

A *window* is one forecasting sample at 10 fps around a current frame t (docs/conventions.md):
20 observed frames (offsets -19..0), 10 target frames (protocol ``future``: +1..+10; protocol
``egghand-code``: 0..+9), everything expressed in the canonical frame of the camera at offset -19.

A batch is a plain ``dict[str, Tensor | list]``; a single window has the same keys without the leading
B. Coordinates are metres, never normalised: models normalise internally with the training-split
min-max statistics (``NormStats``) and return metres. Missing joints travel as ``False`` in the
validity masks; their coordinates are arbitrary (the pipeline writes 0) and must be ignored.

Keys (B = batch, dtype in brackets):
- ``past_joints``      (B, 20, 42, 3) [float32] canonical observed joints.
- ``past_valid``       (B, 20, 42)    [bool]
- ``past_extrinsics``  (B, 20, 3, 4)  [float32] per observed frame, the canonical -> camera matrix
                       (world -> camera composed with canonical -> world). Together with
                       ``past_joints`` it forms the 138-number state of the official code.
- ``future_joints``    (B, 10, 42, 3) [float32] canonical target joints.
- ``future_valid``     (B, 10, 42)    [bool]
- ``future_extrinsics``(B, 10, 3, 4)  [float32] as ``past_extrinsics`` for the target frames.
- ``frames``           (B, 4, 3, H, W) [uint8] RGB at offsets -18, -12, -6, 0 (H = W = 224 by default).
- ``task``             list[str] of length B: the task prompt.
- ``egomotion``        (B,) [float32] egomotion score (docs/conventions.md) over observation + target.
- ``canonical_T``      (B, 4, 4) [float32] world -> canonical transform of the window.
- ``episode_index``    (B,) [int64]; ``frame_index`` (B,) [int64] the 30 fps frame number of t.
- ``take_uid``         list[str]; ``scenario`` list[str] (EgoExo4D task / scenario name).

Optional, when a frozen encoder's features were precomputed (feature cache):
- ``video_tokens`` (B, Nv, Dv) [float32], ``video_mask`` (B, Nv) [bool],
  ``text_tokens`` (B, Nt, Dt) [float32], ``text_mask`` (B, Nt) [bool].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NUM_OBS = 20
NUM_TARGET = 10
FPS = 10
FRAME_STRIDE = 3  # 30 fps annotation frame numbers -> 10 fps
OBS_OFFSETS: tuple[int, ...] = tuple(range(-NUM_OBS + 1, 1))
TARGET_OFFSETS: dict[str, tuple[int, ...]] = {
    "future": tuple(range(1, NUM_TARGET + 1)),
    "egghand-code": tuple(range(0, NUM_TARGET)),
}
VIDEO_OFFSETS: tuple[int, ...] = (-18, -12, -6, 0)
STATE_DIM = 42 * 3 + 12  # 138: joints + flattened 3x4 camera matrix
ACTION_DIM = 42 * 3  # 126

TENSOR_KEYS = (
    "past_joints", "past_valid", "past_extrinsics", "future_joints", "future_valid", "future_extrinsics",
    "frames", "egomotion", "canonical_T", "episode_index", "frame_index",
)
LIST_KEYS = ("task", "take_uid", "scenario")
FEATURE_KEYS = ("video_tokens", "video_mask", "text_tokens", "text_mask")


def target_offsets(protocol: str) -> tuple[int, ...]:
    """Target frame offsets (10 fps steps) of a protocol name: 'future' or 'egghand-code'."""
    try:
        return TARGET_OFFSETS[protocol]
    except KeyError:
        raise ValueError(f"protocol: unknown {protocol!r}; expected one of {sorted(TARGET_OFFSETS)}") from None


@dataclass
class NormStats:
    """Min-max statistics of the training split, after canonicalisation (docs/conventions.md, "Normalisation").

    state_min/state_max: (138,) over observed frames (joints then extrinsics), valid joints only.
    action_min/action_max: (126,) over target frames, valid joints only.
    """

    state_min: torch.Tensor
    state_max: torch.Tensor
    action_min: torch.Tensor
    action_max: torch.Tensor

    def to_lerobot(self) -> dict[str, dict[str, torch.Tensor]]:
        """The statistics in lerobot's layout ``{feature: {"min": ..., "max": ...}}``."""
        return {
            "observation.state": {"min": self.state_min, "max": self.state_max},
            "action": {"min": self.action_min, "max": self.action_max},
        }

    @classmethod
    def from_lerobot(cls, stats: dict) -> NormStats:
        t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
        return cls(
            t(stats["observation.state"]["min"]), t(stats["observation.state"]["max"]),
            t(stats["action"]["min"]), t(stats["action"]["max"]),
        )


def collate_windows(windows: list[dict]) -> dict:
    """Stack single windows (dicts of tensors / strings) into a batch dict."""
    if not windows:
        raise ValueError("windows: empty list")
    out: dict = {}
    for key in windows[0]:
        vals = [w[key] for w in windows]
        if isinstance(vals[0], torch.Tensor):
            out[key] = torch.stack(vals)
        elif isinstance(vals[0], (int, float)):
            out[key] = torch.tensor(vals)
        else:
            out[key] = list(vals)
    return out


def batch_to(batch: dict, device: torch.device | str) -> dict:
    """Move every tensor of a batch to ``device`` (strings stay)."""
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
