"""The official EggHand code's loss (``forecast_loss(variant="egghand-code")``): hand-computed small cases
and properties that tie it to the paper variant (the default, unchanged)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from egghand_lib.losses import forecast_loss
from tests.fixtures.random_arrays import FAST


def two_joint_hand():
    """Only the right wrist (0) and right thumb_1 (1) are valid; everything else is invalid."""
    gt = torch.zeros(1, 1, 42, 3)
    pred = torch.zeros(1, 1, 42, 3)
    gt[0, 0, 1] = torch.tensor([3.0, 0.0, 0.0])
    pred[0, 0, 0] = torch.tensor([1.0, 0.0, 0.0])
    pred[0, 0, 1] = torch.tensor([3.0, 1.0, 0.0])
    valid = torch.zeros(1, 1, 42, dtype=torch.bool)
    valid[0, 0, :2] = True
    return pred, gt, valid


def test_two_joint_hand_by_hand():
    pred, gt, valid = two_joint_hand()
    paper = forecast_loss(pred, gt, valid, weights=(1.0, 1.0, 1.0))
    code = forecast_loss(pred, gt, valid, weights=(1.0, 1.0, 1.0), variant="egghand-code")
    e = math.sqrt(5.0) - 3.0  # predicted distance sqrt(2^2 + 1^2) vs true 3
    # L_pair: the paper pools the one pair (0, 1); the official matrix pools (0,0), (0,1), (1,0), (1,1)
    assert float(paper["pair"]) == pytest.approx(e**2, rel=1e-6)
    assert float(code["pair"]) == pytest.approx((0 + e**2 + e**2 + 0) / 4, rel=1e-6)
    # L_rel: paper pools thumb - wrist = (2, 1, 0) vs (3, 0, 0): |(1, 1, 0)| / 3 coordinates;
    # official adds the wrist's own coordinates (1, 0, 0) vs (0, 0, 0): (1 + 1 + 0 + 1 + 0 + 0) / 6
    assert float(paper["rel"]) == pytest.approx(2 / 3, rel=1e-6)
    assert float(code["rel"]) == pytest.approx(3 / 6, rel=1e-6)
    # L_abs is the same in both: (|1| + |0| + |1|) over 6 coordinates
    assert float(paper["abs"]) == float(code["abs"]) == pytest.approx(2 / 6, rel=1e-6)


def test_a_sample_without_valid_joints_trains_on_its_markers_in_the_official_variant():
    pred, gt, valid = two_joint_hand()
    pred = torch.cat([pred, torch.full_like(pred, 0.5)])  # a second sample, nothing valid, markers at 0
    gt, valid = torch.cat([gt, torch.zeros_like(gt)]), torch.cat([valid, torch.zeros_like(valid)])
    paper = forecast_loss(pred, gt, valid, weights=(1.0, 0.0, 0.0))
    code = forecast_loss(pred, gt, valid, weights=(1.0, 0.0, 0.0), variant="egghand-code")
    assert float(paper["abs"]) == pytest.approx(2 / 6)  # the empty sample is ignored
    # official: the empty sample's mask turns all true: 42 x 3 coordinates at |0.5 - 0| join the pool
    assert float(code["abs"]) == pytest.approx((2 + 42 * 3 * 0.5) / (6 + 42 * 3), rel=1e-6)
    with pytest.raises(ValueError, match="variant"):
        forecast_loss(pred, gt, valid, variant="official")


@FAST
@given(seed=st.integers(0, 10_000))
def test_with_every_joint_valid_the_variants_differ_only_as_the_pools_do(seed):
    rng = np.random.default_rng(seed)
    gt = torch.tensor(rng.normal(size=(2, 3, 42, 3)), dtype=torch.float32)
    pred = gt + torch.tensor(rng.normal(scale=0.1, size=gt.shape), dtype=torch.float32)
    valid = torch.ones(2, 3, 42, dtype=torch.bool)
    paper, code = forecast_loss(pred, gt, valid), forecast_loss(pred, gt, valid, variant="egghand-code")
    torch.testing.assert_close(code["abs"], paper["abs"])
    # per hand: 210 unordered pairs in the paper; 21 x 21 ordered ones (2 x 210 + a zero diagonal) officially
    torch.testing.assert_close(code["pair"], paper["pair"] * 420 / 441, rtol=1e-5, atol=1e-7)
    # L_rel: 40 relative joints pooled with the 2 wrists' absolute errors (which are L_abs's wrist errors)
    wrist_abs = (pred[..., [0, 21], :] - gt[..., [0, 21], :]).abs().mean()
    torch.testing.assert_close(code["rel"], (paper["rel"] * 40 + wrist_abs * 2) / 42, rtol=1e-5, atol=1e-7)
