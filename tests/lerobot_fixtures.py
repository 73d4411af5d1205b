"""Tiny synthetic Episodes for the LeRobot and feature-cache tests (no files, no prepared folder)."""

from __future__ import annotations

import numpy as np

from egghand_lib.data.episodes import Episode
from egghand_lib.geometry import look_at_extrinsics


def make_episode(seed: int, num_frames: int = 30, size: int = 32, episode_index: int = 0,
                 task: str = "cut the bread", first_frame: int = 90) -> Episode:
    """A walking, turning camera and two hands in front of it; some joints invalid; random RGB frames."""
    rng = np.random.default_rng(seed)
    F = num_frames
    t = np.arange(F) / 10.0
    heading = rng.uniform(-np.pi, np.pi) + 0.3 * np.sin(t + seed)
    eye = np.stack([0.4 * t + rng.uniform(-2, 2), 0.2 * np.sin(t) + rng.uniform(-2, 2), 1.5 + 0.05 * np.cos(3 * t)], 1)
    look = eye + np.stack([np.cos(heading), np.sin(heading), -0.6 + 0.1 * np.sin(2 * t)], 1)
    extr = np.stack([look_at_extrinsics(eye[f], look[f]) for f in range(F)]).astype(np.float32)
    base = eye + 0.5 * (look - eye)
    joints = base[:, None, :] + 0.08 * rng.standard_normal((F, 42, 3)) + 0.01 * t[:, None, None]
    valid = rng.random((F, 42)) > 0.25
    valid[:, 21:] &= rng.random((F, 1)) > 0.3  # whole left hand missing in some frames
    joints = np.where(valid[..., None], joints, 0.0).astype(np.float32)
    K = np.array([[30.0, 0, size / 2], [0, 30.0, size / 2], [0, 0, 1]], dtype=np.float32)
    frames = rng.integers(0, 256, (F, size, size, 3), dtype=np.uint8)
    return Episode(
        take_uid=f"take-{seed:04d}", episode_index=episode_index, task=task, scenario=f"Cooking {seed % 2}",
        split="train", frame_numbers=np.arange(first_frame, first_frame + 3 * F, 3, dtype=np.int64),
        joints=joints, valid=valid, extrinsics=extr, intrinsics=K, frames=frames,
    )


def make_episodes(n: int = 2, num_frames: int = 30, size: int = 32) -> list[Episode]:
    tasks = ["cut the bread", "stir the pot"]
    return [make_episode(100 + i, num_frames=num_frames - 5 * i, size=size, episode_index=i, task=tasks[i % 2])
            for i in range(n)]


def write_prepared(prep_dir, episodes: list[Episode], split: str = "train"):
    """A minimal prepared folder (episode files + manifest) written with the prepare module's own writer."""
    from pathlib import Path

    from egghand_lib.data import prepared

    prep_dir = Path(prep_dir)
    for ep in episodes:
        prepared.save_episode(ep, prepared.episode_path(prep_dir, split, ep.key))
    manifest = {"splits": {split: {"episodes": [ep.key for ep in episodes]}}, "up": [0.0, 0.0, 1.0]}
    prepared.write_manifest(prep_dir, manifest)
    return prep_dir
