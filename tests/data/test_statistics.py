"""Training statistics: min-max bounds over canonical windows, valid joints only."""

from __future__ import annotations

import numpy as np
import torch

from egghand_lib.data.statistics import compute_stats, window_bounds
from egghand_lib.data.windows import WindowDataset
from tests.fixtures.episodes import make_episodes


def _windows(n: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = {
        "past_joints": rng.normal(size=(n, 20, 42, 3)).astype(np.float32),
        "past_valid": rng.random((n, 20, 42)) > 0.3,
        "past_extrinsics": rng.normal(size=(n, 20, 3, 4)).astype(np.float32),
        "future_joints": rng.normal(size=(n, 10, 42, 3)).astype(np.float32),
        "future_valid": rng.random((n, 10, 42)) > 0.3,
    }
    w["past_joints"][~w["past_valid"]] = 100.0  # invalid entries must not reach the statistics
    w["future_joints"][~w["future_valid"]] = -100.0
    w["future_valid"][:, :, 5] = False  # a joint never valid in the targets
    w["past_extrinsics"][..., 2, 2] = 1.0  # a constant dimension
    return w


def test_window_bounds_use_valid_joints_only_and_merge_exactly():
    w = _windows()
    halves = [{k: v[:20] for k, v in w.items()}, {k: v[20:] for k, v in w.items()}]
    stats = window_bounds(halves)
    pj = np.where(w["past_valid"][..., None], w["past_joints"], np.nan).reshape(-1, 126)
    np.testing.assert_array_equal(stats.state_min[:126].numpy(), np.nanmin(pj, 0))
    np.testing.assert_array_equal(stats.state_max[:126].numpy(), np.nanmax(pj, 0))
    np.testing.assert_array_equal(stats.state_max[126:].numpy(), w["past_extrinsics"].reshape(-1, 12).max(0))
    fj = np.where(w["future_valid"][..., None], w["future_joints"], np.nan).reshape(-1, 126)
    np.testing.assert_array_equal(stats.action_max[:15].numpy(), np.nanmax(fj[:, :15], 0))
    assert torch.all(stats.action_min[15:18] == 0) and torch.all(stats.action_max[15:18] == 0)  # never valid
    whole = window_bounds([w])
    for a in ("state_min", "state_max", "action_min", "action_max"):
        assert torch.equal(getattr(stats, a), getattr(whole, a))


def test_compute_stats_is_the_bounds_of_the_dataset_windows():
    episodes = make_episodes(2, num_frames=30, size=8)
    ds = WindowDataset.from_episodes(episodes)
    a, b = compute_stats(episodes), window_bounds([ds.arrays()])
    for k in ("state_min", "state_max", "action_min", "action_max"):
        assert torch.equal(getattr(a, k), getattr(b, k))
