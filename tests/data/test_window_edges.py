"""Episode edges of the windows: "mask" (default), "pad" (the official EggHand loader), "complete" (EgoH4).

A 5-frame episode whose padded windows are written out by hand, and properties that tie the three
together (so the default path cannot drift).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from egghand_lib.batch import OBS_OFFSETS, target_offsets
from egghand_lib.data.episodes import Episode
from egghand_lib.data.statistics import compute_stats
from egghand_lib.data.windows import WindowDataset, make_windows, window_frames
from egghand_lib.geometry import look_at_extrinsics
from tests.fixtures.episodes import make_episode
from tests.fixtures.random_arrays import FAST


def five_frames() -> Episode:
    """A level camera at the origin looking along +x (canonical = world); joint 0's x is the frame number
    k = 0..4 and it is missing at k = 2; every other joint sits still."""
    n = 5
    E = np.repeat(look_at_extrinsics((0.0, 0.0, 0.0), (1.0, 0.0, 0.0))[None], n, 0).astype(np.float32)
    J = np.full((n, 42, 3), 0.5, np.float32)
    J[:, 0, 0] = np.arange(n)
    valid = np.ones((n, 42), bool)
    valid[2, 0] = False
    return Episode(take_uid="five", episode_index=0, task="t", scenario="s", split="train",
                   frame_numbers=30 + 3 * np.arange(n, dtype=np.int64), joints=J, valid=valid, extrinsics=E,
                   intrinsics=np.eye(3, dtype=np.float32), frames=np.zeros((n, 4, 4, 3), np.uint8))


def test_padded_windows_of_a_five_frame_episode_written_out_by_hand():
    w = make_windows(five_frames(), protocol="egghand-code", edges="pad")
    assert len(w["frame_index"]) == 5  # one window per frame
    T, F = True, False
    # Window t = 0: the 19 observed offsets before the episode are copies of frame 0, counted valid;
    # targets 0..+9 are frames 0, 1, 2, 3, 4 and then copies of frame 4.
    np.testing.assert_allclose(w["past_joints"][0, :, 0, 0], [0.0] * 20, atol=1e-6)
    assert w["past_valid"][0, :, 0].tolist() == [T] * 20
    np.testing.assert_allclose(w["future_joints"][0, :, 0, 0], [0, 1, 0, 3, 4, 4, 4, 4, 4, 4], atol=1e-6)
    assert w["future_valid"][0, :, 0].tolist() == [T, T, F, T, T, T, T, T, T, T]
    # Window t = 4: observed are 15 copies of frame 0 then frames 0..4; targets are ten copies of frame 4.
    np.testing.assert_allclose(w["past_joints"][4, :, 0, 0], [0.0] * 16 + [1, 0, 3, 4], atol=1e-6)
    assert w["past_valid"][4, :, 0].tolist() == [T] * 16 + [T, F, T, T]
    np.testing.assert_allclose(w["future_joints"][4, :, 0, 0], [4.0] * 10, atol=1e-6)
    assert w["future_valid"][4, :, 0].tolist() == [T] * 10

    # The default ("mask") is the same windows with everything outside the episode invalid.
    m = make_windows(five_frames(), protocol="egghand-code")
    assert m["past_valid"][0, :, 0].tolist() == [F] * 19 + [T]
    assert m["future_valid"][0, :, 0].tolist() == [T, T, F, T, T, F, F, F, F, F]
    assert m["past_valid"][4, :, 0].tolist() == [F] * 15 + [T, T, F, T, T]
    assert m["future_valid"][4, :, 0].tolist() == [T] + [F] * 9

    # EgoH4 keeps only complete windows: none in 5 frames.
    c = make_windows(five_frames(), protocol="future", edges="complete")
    assert len(c["frame_index"]) == 0
    with pytest.raises(ValueError, match="no complete 20\\+10-frame window"):
        WindowDataset.from_episodes([five_frames()], edges="complete")


def test_complete_windows_count_and_positions():
    # future: 30 frames (-19..+10) -> n - 29 windows; egghand-code: 29 frames (-19..+9) -> n - 28.
    assert window_frames(35, "future", "complete").tolist() == list(range(19, 25))
    assert window_frames(35, "egghand-code", "complete").tolist() == list(range(19, 26))
    assert window_frames(29, "future", "complete").tolist() == []
    assert window_frames(7, "future", "mask").tolist() == list(range(7))
    with pytest.raises(ValueError, match="edges"):
        window_frames(7, "future", "clamp")


@FAST
@given(seed=st.integers(0, 10_000), n=st.integers(1, 45), protocol=st.sampled_from(["future", "egghand-code"]))
def test_pad_and_complete_agree_with_the_default_windows(seed, n, protocol):
    ep = make_episode(seed, num_frames=n, size=4)
    mask = make_windows(ep, protocol)
    for k, v in make_windows(ep, protocol, edges="mask").items():
        np.testing.assert_array_equal(mask[k], v)  # NaN egomotion (one-frame episodes) compares equal
    pad = make_windows(ep, protocol, edges="pad")
    tgt = np.asarray(target_offsets(protocol))
    t = np.arange(n)[:, None]
    for part, offsets in (("past", np.asarray(OBS_OFFSETS)), ("future", tgt)):
        inside = (t + offsets >= 0) & (t + offsets < n)
        src = np.clip(t + offsets, 0, n - 1)
        # pad: every slot keeps the validity of the frame it copies; mask: only slots inside the episode
        np.testing.assert_array_equal(pad[f"{part}_valid"], ep.valid[src])
        np.testing.assert_array_equal(mask[f"{part}_valid"], ep.valid[src] & inside[..., None])
        np.testing.assert_array_equal(pad[f"{part}_extrinsics"], mask[f"{part}_extrinsics"])
        both = mask[f"{part}_valid"]
        np.testing.assert_array_equal(pad[f"{part}_joints"][both], mask[f"{part}_joints"][both])
    for k in ("canonical_T", "frame_index", "frame_indices"):
        np.testing.assert_array_equal(pad[k], mask[k])
    np.testing.assert_array_equal(pad["egomotion"], mask["egomotion"])  # copies never count as motion
    # complete: exactly the default windows at the complete positions, nothing masked by the edges
    comp = make_windows(ep, protocol, edges="complete")
    rows = window_frames(n, protocol, "complete")
    for k in ("past_joints", "past_valid", "future_joints", "future_valid", "canonical_T", "frame_index"):
        np.testing.assert_array_equal(comp[k], mask[k][rows])


def test_dataset_and_statistics_follow_the_edges():
    eps = [make_episode(s, num_frames=40, size=4, episode_index=s) for s in range(2)]
    full = WindowDataset.from_episodes(eps)
    comp = WindowDataset.from_episodes(eps, edges="complete")
    assert len(full) == 80 and len(comp) == 2 * (40 - 29) and comp.edges == "complete"
    i = 5  # the sixth complete window of the first episode is its frame 19 + 5
    assert int(comp[i]["frame_index"]) == int(full[19 + i]["frame_index"])
    assert comp.episode_of(len(comp) - 1).episode_index == 1
    assert comp.frames_of(0).shape == (4, 4, 4, 3)
    # statistics: padding adds copies of real frames, so the bounds are those of the real frames
    a, b = compute_stats(eps), compute_stats(eps, edges="pad")
    for k in ("state_min", "state_max", "action_min", "action_max"):
        np.testing.assert_array_equal(getattr(a, k).numpy(), getattr(b, k).numpy())
