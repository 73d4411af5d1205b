"""Canonical forecasting windows of an episode, and WindowDataset (docs/conventions.md, "Windows").

A window around a current frame t: observed offsets -19..0, target offsets per protocol, video offsets
-18, -12, -6, 0 (egghand_lib.batch), everything in the canonical frame of the camera at offset -19.
What happens at an episode's edges is the ``edges`` option:
- "mask" (default): one window per frame; offsets outside the episode are clamped to the nearest frame
  (extrinsics, video frames) and their joints are marked invalid;
- "pad" (the official EggHand data loader): one window per frame; the clamped copies of the first / last
  frame count as real (their joints keep the copied frame's validity);
- "complete" (EgoH4): only windows whose observed and target frames all lie inside the episode.

``make_windows`` builds all windows of an episode at once from index arrays and batched matrix products
(no Python loop per window); ``WindowDataset`` serves them with memory-mapped frames. The training
statistics of these windows are computed in ``egghand_lib.data.statistics``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from egghand_lib.batch import OBS_OFFSETS, VIDEO_OFFSETS, NormStats, collate_windows, target_offsets
from egghand_lib.data.episodes import Episode
from egghand_lib.data.prepared import load_episode, load_split_episodes, read_manifest, read_stats
from egghand_lib.egomotion import egomotion_score
from egghand_lib.geometry import canonical_transform, invert_rigid

ARRAY_KEYS = (
    "past_joints", "past_valid", "past_extrinsics", "future_joints", "future_valid", "future_extrinsics",
    "egomotion", "canonical_T", "episode_index", "frame_index", "frame_indices",
)
STRING_KEYS = ("task", "take_uid", "scenario")


EDGES = ("mask", "pad", "complete")


def check_edges(edges: str) -> str:
    if edges not in EDGES:
        raise ValueError(f"edges: expected one of {EDGES}, got {edges!r}")
    return edges


def window_frames(n: int, protocol: str = "future", edges: str = "mask") -> np.ndarray:
    """Positions t (into an episode of n frames) of the current frame of each window, (N,) int64."""
    t = np.arange(n, dtype=np.int64)
    if check_edges(edges) == "complete":
        offsets = OBS_OFFSETS + target_offsets(protocol)
        t = t[(t + min(offsets) >= 0) & (t + max(offsets) <= n - 1)]
    return t


def _gather(n: int, t: np.ndarray, offsets) -> tuple[np.ndarray, np.ndarray]:
    """Indices t + offset, clamped to the episode of n frames -> (idx (N, K), inside (N, K) bool)."""
    raw = t[:, None] + np.asarray(offsets)[None, :]
    return np.clip(raw, 0, n - 1), (raw >= 0) & (raw < n)


def canonicalize_windows(past_joints, past_valid, past_extrinsics, future_joints, future_valid, future_extrinsics,
                         frame_valid=None, up=(0.0, 0.0, 1.0), protocol: str | None = None) -> dict[str, np.ndarray]:
    """World-frame window arrays -> canonical ones (docs/conventions.md, "Coordinate frames"); poses in
    float64, joints in float32.

    past_joints (N, 20, 42, 3) world, past_valid (N, 20, 42), past_extrinsics (N, 20, 3, 4) world -> camera,
    future_* likewise with 10 frames. frame_valid (N, 30): real frames (not clamped copies outside the
    episode), observed then target. The canonical frame is that of past_extrinsics[:, 0]. Returns
    past/future joints (0 where invalid), valid, extrinsics (canonical -> camera), canonical_T (N, 4, 4)
    and egomotion (N,) over the observed + target camera poses in the canonical frame; with protocol
    "egghand-code" the first target frame (= the last observed one) is counted once.
    Shared with the LeRobot reader so that both give identical windows.
    """
    pe = np.asarray(past_extrinsics, dtype=np.float64)
    fe = np.asarray(future_extrinsics, dtype=np.float64)
    C = canonical_transform(pe[:, 0], up)  # (N, 4, 4) world -> canonical
    C_inv = invert_rigid(C)
    # Joints in float32 (batched matmul, not einsum: BLAS-fast); poses in float64.
    Rt = np.ascontiguousarray(C[:, :3, :3].transpose(0, 2, 1), dtype=np.float32)  # (N, 3, 3)
    t = C[:, None, :3, 3].astype(np.float32)  # (N, 1, 3)
    out: dict[str, np.ndarray] = {}
    for name, J, V, E in (("past", past_joints, past_valid, pe), ("future", future_joints, future_valid, fe)):
        J = np.asarray(J, dtype=np.float32)
        V = np.asarray(V, dtype=bool)
        X = (J.reshape(J.shape[0], J.shape[1] * J.shape[2], 3) @ Rt + t).reshape(J.shape)
        X[~V] = 0.0
        out[f"{name}_joints"] = X
        out[f"{name}_valid"] = V
        # canonical -> camera = (world -> camera) o (canonical -> world)
        out[f"{name}_extrinsics"] = (E @ C_inv[:, None])[..., :3, :].astype(np.float32)
    out["canonical_T"] = C.astype(np.float32)

    cams = np.concatenate([out["past_extrinsics"], out["future_extrinsics"]], axis=1).astype(np.float64)
    n, k_obs = pe.shape[0], pe.shape[1]
    fv = np.ones(cams.shape[:2], bool) if frame_valid is None else np.asarray(frame_valid, bool)
    if protocol == "egghand-code":  # target offset 0 repeats observed offset 0: drop the copy
        keep = np.r_[0:k_obs, k_obs + 1:cams.shape[1]]
        cams, fv = cams[:, keep], fv[:, keep]
    if n and cams.shape[1] > 1:
        out["egomotion"] = np.asarray(egomotion_score(cams, fv), dtype=np.float32)
    else:
        out["egomotion"] = np.full(n, np.nan, np.float32)
    return out


def make_windows(episode: Episode, protocol: str = "future", up=(0.0, 0.0, 1.0),
                 edges: str = "mask") -> dict[str, np.ndarray]:
    """All N windows of an episode, vectorised (N = len(episode), or fewer with ``edges="complete"``).

    Returns numpy arrays with the keys of egghand_lib/batch.py (N leading), except that ``frames`` is
    replaced by ``frame_indices`` (N, 4) int64 indices into ``episode.frames``; ``task``, ``take_uid``
    and ``scenario`` are (N,) object arrays of str. Egomotion is computed on the window's camera poses
    in its canonical frame (the state the model sees), over adjacent frames inside the episode (the
    copies of "pad" do not count as motion).
    """
    n = len(episode)
    if n == 0:
        raise ValueError(f"episode {episode.take_uid}: no frames")
    tgt_off = target_offsets(protocol)
    t = window_frames(n, protocol, edges)
    obs_i, obs_in = _gather(n, t, OBS_OFFSETS)  # (N, 20)
    tgt_i, tgt_in = _gather(n, t, tgt_off)  # (N, 10)
    vid_i, _ = _gather(n, t, VIDEO_OFFSETS)  # (N, 4)
    # "pad": a copied edge frame keeps its own validity, as if it were real
    obs_real, tgt_real = (obs_in, tgt_in) if edges != "pad" else (np.ones_like(obs_in), np.ones_like(tgt_in))

    J = np.asarray(episode.joints, dtype=np.float32)
    V = np.asarray(episode.valid, dtype=bool)
    E = np.asarray(episode.extrinsics, dtype=np.float32)
    out = canonicalize_windows(
        past_joints=J[obs_i], past_valid=V[obs_i] & obs_real[..., None], past_extrinsics=E[obs_i],
        future_joints=J[tgt_i], future_valid=V[tgt_i] & tgt_real[..., None], future_extrinsics=E[tgt_i],
        frame_valid=np.concatenate([obs_in, tgt_in], axis=1), up=up, protocol=protocol,
    )
    N = len(t)
    return {
        **out,
        "episode_index": np.full(N, episode.episode_index, np.int64),
        "frame_index": np.asarray(episode.frame_numbers, np.int64)[t],
        "frame_indices": vid_i.astype(np.int64),
        "task": np.full(N, episode.task, dtype=object),
        "take_uid": np.full(N, episode.take_uid, dtype=object),
        "scenario": np.full(N, episode.scenario, dtype=object),
    }


def concat_windows(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate make_windows outputs of several episodes (frame_indices stay per-episode)."""
    if not parts:
        raise ValueError("no windows to concatenate (empty split?)")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


# ------------------------------------------------------------------------------------------ dataset


class WindowDataset(torch.utils.data.Dataset):
    """Windows of a prepared split (PREP_DIR/episodes/{split}); items are single-window dicts (batch.py).

    Episode frames are memory-mapped; all non-image arrays are built once, vectorised, at construction.
    ``stats`` is the NormStats of PREP_DIR/stats.json (None if absent). ``edges``: "mask" | "pad" |
    "complete" (module docstring). Use ``collate_fn`` in DataLoaders.
    """

    collate_fn = staticmethod(collate_windows)

    def __init__(self, prep_dir: str | Path | None, split: str, protocol: str = "future", up=None,
                 episodes: list[Episode] | None = None, stats: NormStats | None = None, edges: str = "mask"):
        self.split, self.protocol, self.edges = split, protocol, check_edges(edges)
        target_offsets(protocol)  # validates the name
        if episodes is None:
            if prep_dir is None:
                raise ValueError("WindowDataset: give prep_dir or episodes")
            prep_dir = Path(prep_dir)
            manifest = read_manifest(prep_dir)
            episodes = load_split_episodes(prep_dir, split)
            up = manifest.get("up", (0.0, 0.0, 1.0)) if up is None else up
            stats = stats if stats is not None else read_stats(prep_dir)
        self.prep_dir = prep_dir
        self.up = tuple(up) if up is not None else (0.0, 0.0, 1.0)
        self.episodes = sorted(episodes, key=lambda e: (e.episode_index, int(e.frame_numbers[0]), e.take_uid))
        self.stats = stats
        if not self.episodes:
            raise ValueError(f"WindowDataset: split {split!r} has no episodes")
        parts = [make_windows(e, protocol, self.up, edges) for e in self.episodes]
        self._arrays = concat_windows(parts)
        self._episode_pos = np.repeat(np.arange(len(self.episodes)), [len(p["frame_index"]) for p in parts])
        if len(self._episode_pos) == 0:
            raise ValueError(f"WindowDataset: split {split!r} has no complete {len(OBS_OFFSETS)}+"
                             f"{len(target_offsets(protocol))}-frame window (edges={edges!r})")

    @classmethod
    def from_episodes(cls, episodes: list[Episode], protocol: str = "future", up=(0.0, 0.0, 1.0),
                      stats: NormStats | None = None, split: str = "memory", edges: str = "mask") -> WindowDataset:
        """Windows of in-memory episodes (no prepared folder)."""
        return cls(None, split, protocol, up, episodes=episodes, stats=stats, edges=edges)

    def __len__(self) -> int:
        return len(self._episode_pos)

    def __getstate__(self) -> dict:
        # Memory-mapped frames would be pickled as full copies (DataLoader workers with "spawn"): send
        # the file paths instead and map them again on the other side.
        state = self.__dict__.copy()
        state["episodes"] = [
            dataclasses.replace(e, frames=None) if isinstance(e.frames, np.memmap) and "path" in e.meta else e
            for e in self.episodes
        ]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for e in self.episodes:
            if e.frames is None and "path" in e.meta:
                e.frames = load_episode(e.meta["path"]).frames

    def arrays(self) -> dict[str, np.ndarray]:
        """All non-image window arrays at once (N leading; see make_windows). Do not modify in place."""
        return self._arrays

    def episode_of(self, i: int) -> Episode:
        """The episode window i comes from (its row ``arrays()["frame_indices"][i]`` indexes its frames)."""
        return self.episodes[self._episode_pos[int(i)]]

    def frames_of(self, i: int) -> np.ndarray:
        """The 4 video frames of window i as stored: (4, H, W, 3) uint8."""
        ep = self.episode_of(i)
        if ep.frames is None:
            raise ValueError(f"episode {ep.key}: no frames stored")
        return np.asarray(ep.frames[self._arrays["frame_indices"][i]])

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        i = int(i) % len(self)
        a = self._arrays
        item = {k: torch.from_numpy(np.array(a[k][i])) for k in ARRAY_KEYS if k != "frame_indices"}  # copies
        item["frames"] = torch.from_numpy(self.frames_of(i)).permute(0, 3, 1, 2)
        for k in STRING_KEYS:
            item[k] = str(a[k][i])
        return item
