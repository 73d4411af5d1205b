"""EggHand's lerobot processor steps normalise exactly like the model's normaliser, and round-trip."""

from __future__ import annotations

import torch
from lerobot.processor.converters import create_transition

from egghand_lib.data.statistics import compute_stats
from egghand_lib.data.windows import WindowDataset
from egghand_lib.models.egghand.processor_egghand import (
    ACTION_KEY,
    STATE_KEY,
    TransitionKey,
    make_egghand_pre_post_processors,
    window_state,
)
from egghand_lib.normalization import MinMaxNormalizer, minmax_normalize, stats_to_json
from tests.fixtures.episodes import make_episodes


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
