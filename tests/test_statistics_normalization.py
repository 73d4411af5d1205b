"""Training statistics (valid joints only) and the one min-max normaliser, in the model and as lerobot steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lerobot.processor.converters import create_transition
from lerobot_fixtures import make_episodes

from egghand_lib.batch import NormStats
from egghand_lib.data.statistics import compute_stats, window_bounds
from egghand_lib.data.windows import WindowDataset
from egghand_lib.models.egghand.processor_egghand import (
    ACTION_KEY,
    STATE_KEY,
    TransitionKey,
    make_egghand_pre_post_processors,
    window_state,
)
from egghand_lib.normalization import MinMaxNormalizer, minmax_normalize, minmax_unnormalize, stats_to_json


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


def test_minmax_maps_range_to_unit_interval_and_constant_to_zero():
    lo, hi = torch.tensor([0.0, -2.0, 5.0]), torch.tensor([1.0, 2.0, 5.0])
    x = torch.tensor([[0.0, -2.0, 5.0], [1.0, 2.0, 5.0], [0.5, 0.0, 5.0]])
    y = minmax_normalize(x, lo, hi)
    torch.testing.assert_close(y, torch.tensor([[-1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(minmax_unnormalize(y, lo, hi), x)


def test_normalizer_checks_its_statistics():
    norm = MinMaxNormalizer()
    with pytest.raises(ValueError, match="no normalisation statistics"):
        norm.normalize(torch.zeros(138), "state")
    good = NormStats(torch.zeros(138), torch.ones(138), torch.zeros(126), torch.ones(126))
    with pytest.raises(ValueError, match="expected shape"):
        norm.set_stats(NormStats(torch.zeros(5), torch.ones(5), good.action_min, good.action_max))
    with pytest.raises(ValueError, match="finite with min <= max"):
        norm.set_stats(NormStats(torch.ones(138), torch.zeros(138), good.action_min, good.action_max))
    norm.set_stats(good)
    assert norm.has_stats and torch.equal(norm.stats.state_max, good.state_max)


def test_lerobot_steps_normalise_like_the_model_and_round_trip():
    episodes = make_episodes(2, num_frames=30, size=8)
    stats = compute_stats(episodes)
    arr = WindowDataset.from_episodes(episodes).arrays()
    state = window_state(torch.from_numpy(arr["past_joints"]), torch.from_numpy(arr["past_extrinsics"]))
    action = torch.from_numpy(arr["future_joints"]).reshape(len(state), 10, 126)
    pre, post = make_egghand_pre_post_processors(stats)
    out = pre({STATE_KEY: state, ACTION_KEY: action})  # a lerobot batch dict in, a batch dict out
    s_n, a_n = out[STATE_KEY], out[ACTION_KEY]
    norm = MinMaxNormalizer(stats=stats)
    torch.testing.assert_close(s_n, norm.normalize(state, "state"), rtol=0, atol=0)
    torch.testing.assert_close(a_n, minmax_normalize(action, stats.action_min, stats.action_max), rtol=0, atol=0)
    back = post(a_n)  # the post-processor takes and returns the action tensor
    torch.testing.assert_close(back, action, atol=1e-5, rtol=1e-5)
    # the statistics may also come as the lerobot-layout object of a stats.json
    pre2, _ = make_egghand_pre_post_processors(stats_to_json(stats))
    s2 = pre2({STATE_KEY: state})[STATE_KEY]
    torch.testing.assert_close(s2, s_n, rtol=0, atol=0)
    # and as a raw lerobot transition (the form the steps see inside a pipeline)
    step = pre.steps[0]
    t = step(create_transition(observation={STATE_KEY: state}, action=action))
    torch.testing.assert_close(t[TransitionKey.OBSERVATION][STATE_KEY], s_n, rtol=0, atol=0)
