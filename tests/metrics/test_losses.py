"""Masked training losses (docs/conventions.md, "Losses"): values, masking of values AND gradients, bad input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from egghand_lib.losses import forecast_loss
from tests.fixtures.random_arrays import FAST, fill_invalid, one_torch_thread, random_forecast, random_rotation  # noqa: F401

KEYS = ("total", "abs", "rel", "pair")


def loss_and_grad(pred, gt, valid, weights=(0.6, 0.2, 0.2)):
    p = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
    out = forecast_loss(p, torch.tensor(gt), torch.tensor(valid), weights)
    out["total"].backward()
    return {k: float(v.detach()) for k, v in out.items()}, p.grad.numpy()


def two_joint_example(pred_wrist, pred_thumb):
    """One sample, one frame; only the right wrist (0) and right_thumb_1 (1) are valid."""
    gt = np.full((1, 1, 42, 3), np.nan)
    gt[0, 0, 0], gt[0, 0, 1] = (0, 0, 0), (1, 0, 0)
    pred = np.full_like(gt, np.nan)
    pred[0, 0, 0], pred[0, 0, 1] = pred_wrist, pred_thumb
    valid = np.zeros((1, 1, 42), bool)
    valid[0, 0, :2] = True
    return pred, gt, valid


def test_hand_computed_values():
    # thumb 0.3 m too far along x: abs 0.3 / 6 coordinates, rel 0.3 / 3, pair (1.3 - 1)^2
    out, _ = loss_and_grad(*two_joint_example((0, 0, 0), (1.3, 0, 0)))
    assert out == pytest.approx({"abs": 0.05, "rel": 0.1, "pair": 0.09, "total": 0.6 * 0.05 + 0.2 * 0.1 + 0.2 * 0.09})
    # wrist 0.6 m too high: abs 0.6 / 6, rel |-0.6| / 3, pair (sqrt(1.36) - 1)^2
    out, _ = loss_and_grad(*two_joint_example((0, 0, 0.6), (1, 0, 0)), weights=(1.0, 2.0, 3.0))
    pair = (math.sqrt(1.36) - 1) ** 2
    assert out == pytest.approx({"abs": 0.1, "rel": 0.2, "pair": pair, "total": 0.1 + 0.4 + 3 * pair}, rel=1e-6)


@FAST
@given(seed=st.integers(0, 2**32 - 1), p_valid=st.sampled_from([0.0, 0.05, 0.5, 1.0]))
def test_zero_at_gt_and_finite_gradients_under_any_mask(seed, p_valid):
    rng = np.random.default_rng(seed)
    _, gt, valid = random_forecast(rng, n=2, t=3, p_valid=p_valid)
    gt = fill_invalid(gt, valid, np.nan)
    out, grad = loss_and_grad(gt, gt, valid)  # pred == gt (NaN where invalid, on both sides)
    assert all(out[k] == 0.0 for k in KEYS)
    assert np.isfinite(grad).all() and np.abs(grad).max() == 0.0
    pred = gt + rng.normal(scale=0.1, size=gt.shape)
    out, grad = loss_and_grad(pred, gt, valid)
    assert all(math.isfinite(out[k]) for k in KEYS)
    assert np.isfinite(grad).all()
    assert (grad[~valid] == 0).all(), "an invalid joint received a gradient"
    if valid.any():
        assert out["abs"] > 0


def test_all_false_mask_gives_zero_terms_with_zero_gradient():
    pred = torch.full((2, 10, 42, 3), float("nan"), requires_grad=True)
    out = forecast_loss(pred, torch.zeros(2, 10, 42, 3), torch.zeros(2, 10, 42, dtype=torch.bool))
    assert all(float(out[k].detach()) == 0.0 for k in KEYS)
    out["total"].backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_coincident_joints_have_finite_gradient():
    # two valid joints at the same place: the pair distance is 0, where a plain sqrt's gradient is NaN
    pred = torch.zeros(1, 1, 42, 3, requires_grad=True)
    gt = torch.zeros(1, 1, 42, 3)
    gt[0, 0, 1, 0] = 1.0
    valid = torch.zeros(1, 1, 42, dtype=torch.bool)
    valid[0, 0, :2] = True
    forecast_loss(pred, gt, valid)["total"].backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


@FAST
@given(seed=st.integers(0, 2**32 - 1), fill=st.sampled_from([np.nan, 1e6, -np.inf]))
def test_invalid_joints_change_neither_values_nor_gradients(seed, fill):
    rng = np.random.default_rng(seed)
    pred, gt, valid = random_forecast(rng, n=2, t=3)
    ref, ref_grad = loss_and_grad(pred, gt, valid)
    out, grad = loss_and_grad(fill_invalid(pred, valid, fill), fill_invalid(gt, valid, -fill), valid)
    assert out == pytest.approx(ref, rel=1e-6, abs=1e-9)
    assert np.allclose(grad, ref_grad, atol=1e-9)


@FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_relative_and_pair_terms_see_only_hand_shape(seed):
    rng = np.random.default_rng(seed)
    pred, gt, valid = random_forecast(rng, n=2, t=3)
    ref, _ = loss_and_grad(pred, gt, valid)
    # a translation per (sample, frame, hand) changes neither the wrist-relative nor the distance term
    shift = np.repeat(rng.normal(size=(2, 3, 2, 1, 3)), 21, axis=3).reshape(pred.shape)
    out, _ = loss_and_grad(pred + shift, gt, valid)
    assert out["rel"] == pytest.approx(ref["rel"], rel=1e-5, abs=1e-7)
    assert out["pair"] == pytest.approx(ref["pair"], rel=1e-4, abs=1e-7)
    # and one rigid motion of the prediction keeps every intra-hand distance
    R, t = random_rotation(rng), rng.normal(size=3)
    out, _ = loss_and_grad(pred @ R.T + t, gt, valid)
    assert out["pair"] == pytest.approx(ref["pair"], rel=1e-4, abs=1e-7)
    if valid.any():
        assert out["abs"] != pytest.approx(ref["abs"])


def test_output_dtype_leading_shapes_and_numpy_gt():
    rng = np.random.default_rng(3)
    pred, gt, valid = random_forecast(rng, n=2, t=3)
    p64 = torch.tensor(pred, requires_grad=True)
    out = forecast_loss(p64, gt, valid)
    assert all(out[k].dtype == torch.float32 and out[k].shape == () for k in KEYS)
    flat = forecast_loss(torch.tensor(pred).reshape(6, 42, 3), gt.reshape(6, 42, 3), valid.reshape(6, 42))
    assert all(float(flat[k]) == pytest.approx(float(out[k].detach()), rel=1e-6) for k in KEYS)
    out["total"].backward()
    assert p64.grad.dtype == torch.float64


def test_bad_inputs():
    pred, gt, valid = random_forecast(np.random.default_rng(0), n=2, t=3)
    p = torch.tensor(pred)
    with pytest.raises(ValueError, match="pred: expected a torch.Tensor"):
        forecast_loss(pred, gt, valid)
    with pytest.raises(ValueError, match="pred: expected joints"):
        forecast_loss(p[..., :20, :], gt, valid)
    with pytest.raises(ValueError, match="gt: shape"):
        forecast_loss(p, gt[:1], valid)
    with pytest.raises(ValueError, match="valid: mask shape"):
        forecast_loss(p, gt, valid[:, :2])
    bad = gt.copy()
    bad[valid] = np.nan
    with pytest.raises(ValueError, match="gt: NaN or inf in a valid entry"):
        forecast_loss(p, bad, valid)
    with pytest.raises(ValueError, match="pred: NaN or inf in a valid entry"):
        forecast_loss(torch.tensor(bad), gt, valid)
    with pytest.raises(ValueError, match="weights"):
        forecast_loss(p, gt, valid, weights=(1.0, 1.0))
    with pytest.raises(ValueError, match="empty"):
        forecast_loss(p[:0], gt[:0], valid[:0])
