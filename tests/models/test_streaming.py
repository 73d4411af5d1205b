"""The streaming forecaster: frame by frame it gives the batch forecaster's windows and forecasts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egghand_lib.batch import collate_windows
from egghand_lib.data.statistics import compute_stats
from egghand_lib.data.windows import WindowDataset
from egghand_lib.geometry import transform_points
from egghand_lib.models.egghand import EggHandConfig, EggHandPolicy
from egghand_lib.streaming import StreamingForecaster
from tests.fixtures.episodes import make_episode
from tests.fixtures.learnable_episodes import fake_episodes, input_dependent, single_thread, tiny_model
from tests.fixtures.tiny_models import TinyEncoder


@pytest.fixture(scope="module")
def data():
    eps = fake_episodes(2, length=34, size=32)
    return eps, WindowDataset.from_episodes(eps, stats=compute_stats(eps))


@pytest.fixture(scope="module")
def model(data):
    return input_dependent(tiny_model(data[1])).eval()


def batch_forecasts(model, ds, idx):
    with torch.no_grad():
        return model.forecast(collate_windows([ds[i] for i in idx])).numpy()


def stream(forecaster, ep, frames=None):
    frames = range(len(ep)) if frames is None else frames
    return {f: forecaster.step(ep.frames[f], ep.joints[f], ep.valid[f], ep.extrinsics[f], timestamp=f / 10)
            for f in frames}


@pytest.mark.parametrize("min_frames", [1, 20])
def test_stream_equals_batch_forecaster(data, model, min_frames):
    eps, ds = data
    with single_thread():
        for e, ep in enumerate(eps):
            first = sum(len(x) for x in eps[:e])  # window index of the episode's first frame
            fc = StreamingForecaster(model, task=ep.task, min_frames=min_frames)
            outs = stream(fc, ep)
            assert fc.frames_encoded == len(ep)  # every frame through the CNN once, however many windows see it
            ready = [f for f, o in outs.items() if o is not None]
            assert ready == list(range(min_frames - 1, len(ep)))
            want = batch_forecasts(model, ds, [first + f for f in ready])
            for k, f in enumerate(ready):
                out, ref = outs[f], ds[first + f]
                for key in ("past_joints", "past_valid", "past_extrinsics"):
                    np.testing.assert_allclose(out.window[key], ref[key].numpy(), rtol=0, atol=1e-6, err_msg=key)
                np.testing.assert_allclose(out.canonical_T, ref["canonical_T"].numpy(), rtol=0, atol=1e-6)
                np.testing.assert_allclose(out.canonical, want[k], rtol=0, atol=2e-5)
                assert out.timestamp == pytest.approx(f / 10)
                np.testing.assert_allclose(out.target_timestamps, f / 10 + np.arange(1, 11) / 10)


def test_world_forecast_of_a_hold_last_pose_model(data):
    """An untrained anchored model holds each joint's last observed position: in the world frame that is the
    joint where the estimator last saw it, whatever the canonical frame of the window was."""
    _, ds = data
    ep = make_episode(7, num_frames=30)  # a walking, turning camera: canonical and world frames differ
    with single_thread():
        fc = StreamingForecaster(tiny_model(ds, seed=3).eval(), task=ep.task)
        outs = stream(fc, ep)
    for f in (19, 24, len(ep) - 1):
        v = ep.valid[f]
        assert np.abs(outs[f].canonical[0][v] - ep.joints[f][v]).max() > 0.5
        for k in range(10):
            np.testing.assert_allclose(outs[f].world[k][v], ep.joints[f][v], rtol=0, atol=1e-5)
        back = transform_points(outs[f].canonical_T, outs[f].world)
        np.testing.assert_allclose(back, outs[f].canonical, rtol=0, atol=1e-5)


def test_dropped_frames_missing_hands_and_restart(data, model):
    eps, _ = data
    ep = eps[0]
    with single_thread():
        fc = StreamingForecaster(model, task=ep.task)
        frames = [f for f in range(26) if f not in (21, 22)]  # two frames dropped
        outs = stream(fc, ep, frames)
        out = outs[25]
        assert out is not None and out.num_observed == 18
        w = fc.window_arrays()
        k21, k22, k23 = 20 - 1 - (25 - 21), 20 - 1 - (25 - 22), 20 - 1 - (25 - 23)
        assert not w["observed"][[k21, k22]].any() and w["observed"][k23]
        assert not w["past_valid"][[k21, k22]].any()  # no joints where no frame came
        np.testing.assert_array_equal(w["past_extrinsics"][k22], ep.extrinsics[20])  # held: the last frame before
        assert w["image_slots"][k22] == 20
        # a frame without its left hand (NaN joints) and without an image
        joints = ep.joints[26].copy()
        joints[21:] = np.nan
        out = fc.step(None, joints, ep.valid[26], ep.extrinsics[26], timestamp=2.6)
        assert out is not None and not out.window["past_valid"][-1, 21:].any()
        np.testing.assert_array_equal(out.window["past_valid"][-1, :21], ep.valid[26, :21])
        assert fc.window_arrays()["image_slots"][-1] == 25  # the last image is shown again
        assert fc.frames_encoded == len(frames)  # nothing new to encode
        # a gap of 2 s leaves nothing of the window: the stream warms up again
        assert fc.step(ep.frames[0], ep.joints[0], ep.valid[0], ep.extrinsics[0], timestamp=4.6) is None
        with pytest.raises(ValueError, match="not after the previous frame"):
            fc.step(ep.frames[0], ep.joints[0], ep.valid[0], ep.extrinsics[0], timestamp=4.6)
    with pytest.raises(ValueError, match="joints: expected"):
        fc.step(ep.frames[0], ep.joints[0][:20], None, ep.extrinsics[0])
    with pytest.raises(ValueError, match="extrinsics"):
        fc.step(ep.frames[0], ep.joints[0], None, np.full((3, 4), np.nan))


def test_clip_encoder_encodes_the_clip_each_call(data):
    """An encoder without per-frame features (like EgoVideo's) still gives the batch forecasts."""
    eps, ds = data
    torch.manual_seed(0)
    cfg = EggHandConfig.preset("tiny", encoder="cached", encoder_kwargs={})
    net = input_dependent(EggHandPolicy(cfg, stats=ds.stats, encoder=TinyEncoder())).eval()
    assert not net.encoder.frames_independent
    ep = eps[0]
    with single_thread():
        fc = StreamingForecaster(net, task=ep.task)
        outs = stream(fc, ep)
    assert fc.frames_encoded == 0
    ready = [f for f, o in outs.items() if o is not None]
    want = batch_forecasts(net, ds, ready)
    np.testing.assert_allclose(np.stack([outs[f].canonical for f in ready]), want, rtol=0, atol=2e-5)
