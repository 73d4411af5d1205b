"""Static and constant-velocity baselines (docs/conventions.md, "Baselines")."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from egghand_lib.baselines import ConstantVelocity, LastPose, StaticPose
from tests.fixtures.random_arrays import FAST, fill_invalid


@FAST
@given(seed=st.integers(0, 2**32 - 1), fill=st.sampled_from([np.nan, 1e6]))
def test_static_pose_is_training_mean_of_valid_joints(seed, fill):
    rng = np.random.default_rng(seed)
    poses = rng.normal(size=(4, 3, 42, 3))
    valid = rng.random((4, 3, 42)) < 0.6
    valid[0, 0] = True  # every joint seen at least once
    static = StaticPose().fit(fill_invalid(poses, valid, fill), valid)
    for j in range(42):  # the plain definition, one joint at a time
        assert np.allclose(static.pose_[j], poses[:, :, j][valid[:, :, j]].mean(0))
    out = static.predict(poses[:2, :2], horizon=5)
    assert out.shape == (2, 5, 42, 3) and out.dtype == np.float32
    assert np.allclose(out, static.pose_.astype(np.float32)[None, None])


def test_static_pose_fallbacks_and_torch():
    poses = np.zeros((2, 2, 42, 3))
    poses[..., 0] = np.arange(42)  # x coordinate = joint index
    valid = np.zeros((2, 2, 42), bool)
    valid[0, 0, [0, 1, 2]] = True  # right hand: only joints 0-2 seen; left hand never seen
    static = StaticPose().fit(poses, valid)
    assert static.pose_[1].tolist() == [1, 0, 0]
    assert np.allclose(static.pose_[3:21], [1, 0, 0])  # unseen right joints: mean of the right hand's data
    assert np.allclose(static.pose_[21:], 0)  # a hand never seen: the origin
    assert static.joint_counts_.tolist() == [1, 1, 1] + [0] * 39
    out = static.predict(torch.zeros(3, 20, 42, 3), horizon=10)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 10, 42, 3) and out.dtype == torch.float32


@FAST
@given(seed=st.integers(0, 2**32 - 1), first_offset=st.sampled_from([0, 1]), horizon=st.integers(1, 12))
def test_cvm_is_exact_on_linear_motion(seed, first_offset, horizon):
    rng = np.random.default_rng(seed)
    n, t = 3, 20
    x0, vel = rng.normal(size=(n, 1, 42, 3)), rng.normal(scale=0.1, size=(n, 1, 42, 3))
    past_offsets = np.arange(-t + 1, 1)[None, :, None, None]
    past = x0 + vel * past_offsets  # position at offset k is x0 + vel * k; x0 at the current frame
    valid = rng.random((n, t, 42)) < 0.4
    for i in range(n):  # at least two valid observations per joint, at random frames
        for j in range(42):
            valid[i, rng.choice(t, size=2, replace=False), j] = True
    target_offsets = first_offset + np.arange(horizon)
    expected = x0 + vel * target_offsets[None, :, None, None]
    pred = ConstantVelocity().predict(fill_invalid(past, valid, np.nan), valid, horizon, first_offset)
    assert pred.shape == (n, horizon, 42, 3)
    assert np.allclose(pred, expected, atol=1e-5)
    pred_t = ConstantVelocity().predict(torch.tensor(past), torch.tensor(valid), horizon, first_offset)
    assert isinstance(pred_t, torch.Tensor) and pred_t.dtype == torch.float64
    assert np.allclose(pred_t.numpy(), expected, atol=1e-9)


def test_cvm_uses_last_two_valid_observations_with_their_gap():
    past = np.zeros((1, 5, 42, 3))
    past[0, :, 0, 0] = [0, 1, 2, 100, 100]  # joint 0: frames 1 and 2 valid (frames 3-4 invalid)
    valid = np.zeros((1, 5, 42), bool)
    valid[0, [0, 1, 2], 0] = True
    past[0, 0, 1, 0], past[0, 4, 1, 0] = 0.0, 8.0  # joint 1: frames 0 and 4 -> 2 per frame
    valid[0, [0, 4], 1] = True
    past[0, 3, 2] = (1, 2, 3)  # joint 2: one observation -> held
    valid[0, 3, 2] = True
    pred = ConstantVelocity().predict(past, valid, horizon=3, first_offset=1)
    # joint 0: last valid at frame 2 (offset -2), 1 per frame -> offsets 1, 2, 3 are 3, 4, 5 frames later
    assert pred[0, :, 0, 0].tolist() == [5, 6, 7]
    assert pred[0, :, 1, 0].tolist() == [10, 12, 14]
    assert np.allclose(pred[0, :, 2], [(1, 2, 3)] * 3)
    # joints never observed: the mean of the same hand's observed joints in that sample, or the origin
    held = np.mean([[2, 0, 0], [8, 0, 0], [1, 2, 3]], axis=0)
    assert np.allclose(pred[0, 0, 3:21], held) and np.allclose(pred[0, :, 21:], 0)
    # ... or the Static pose when one is given
    static = StaticPose().fit(np.ones((1, 1, 42, 3)), np.ones((1, 1, 42), bool))
    pred = ConstantVelocity(static).predict(past, valid, horizon=3, first_offset=0)
    assert np.allclose(pred[0, :, 3:], 1) and pred[0, :, 0, 0].tolist() == [4, 5, 6]


def test_bad_inputs():
    past, valid = np.zeros((2, 20, 42, 3)), np.ones((2, 20, 42), bool)
    cvm = ConstantVelocity()
    with pytest.raises(ValueError, match="past: expected joints"):
        cvm.predict(past[..., :2], valid)
    with pytest.raises(ValueError, match="past: expected 4 dimensions"):
        cvm.predict(past[0], valid[0])
    with pytest.raises(ValueError, match="past_valid: mask shape"):
        cvm.predict(past, valid[:, :10])
    bad = past.copy()
    bad[1, 3, 5, 2] = np.nan
    with pytest.raises(ValueError, match="past: NaN or inf in a valid entry"):
        cvm.predict(bad, valid)
    with pytest.raises(ValueError, match="empty"):
        cvm.predict(past[:0], valid[:0])
    with pytest.raises(ValueError, match="horizon"):
        cvm.predict(past, valid, horizon=0)
    with pytest.raises(ValueError, match="first_offset"):
        cvm.predict(past, valid, first_offset=0.5)
    with pytest.raises(ValueError, match="static: the StaticPose is not fitted"):
        ConstantVelocity(StaticPose())
    with pytest.raises(RuntimeError, match="fit"):
        StaticPose().predict(past)
    with pytest.raises(ValueError, match="poses: NaN or inf"):
        StaticPose().fit(bad, valid)
    with pytest.raises(ValueError, match="valid: mask shape"):
        StaticPose().fit(past, valid[0])


def test_last_pose_holds_each_joints_last_valid_observation():
    rng = np.random.default_rng(0)
    past = rng.normal(size=(3, 20, 42, 3))
    valid = rng.random((3, 20, 42)) > 0.3
    valid[0, :, 5] = False  # never observed: the Static pose
    static = StaticPose().fit(past, valid)
    out = LastPose(static).predict(past, valid, horizon=10)
    assert out.shape == (3, 10, 42, 3) and out.dtype == np.float32
    for n, j in [(0, 0), (1, 7), (2, 41)]:
        last = np.flatnonzero(valid[n, :, j])[-1]
        np.testing.assert_allclose(out[n, :, j], np.broadcast_to(past[n, last, j], (10, 3)), rtol=1e-6)
    np.testing.assert_allclose(out[0, :, 5], np.broadcast_to(static.pose_[5], (10, 3)), rtol=1e-6)
    # CVM on the same input differs wherever a joint moved between its last two observations
    assert not np.allclose(ConstantVelocity(static).predict(past, valid), out)
