"""Egomotion score and the top-fraction subset (docs/conventions.md, "Egomotion")."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from egghand_lib import geometry as geo
from egghand_lib.egomotion import egomotion_score, top_fraction_mask
from tests.fixtures.random_arrays import FAST, random_rotation


def still_camera(n, t):
    E = geo.look_at_extrinsics([0, 0, 1.6], [1, 0, 1.0])
    return np.broadcast_to(E, (n, t, 3, 4)).copy()


def test_still_camera_scores_zero_and_translation_is_hand_computed():
    E = still_camera(2, 5)
    assert np.allclose(egomotion_score(E), 0)
    # window 1: the camera slides 0.1 m per frame; with a fixed R only t changes, by R @ (-0.1 x) per frame
    R = E[1, 0, :, :3]
    for k in range(5):
        E[1, k, :, 3] = -R @ (np.array([0, 0, 1.6]) + [0.1 * k, 0, 0])
    assert np.allclose(egomotion_score(E), [0.0, 0.1])


def test_mean_of_frobenius_steps():
    E = np.zeros((1, 4, 3, 4))
    E[0, 1, 0, 0] = 3.0  # step 0->1: 3; step 1->2: 3 (back to 0); step 2->3: ||(1, 1, 1, 1)|| = 2
    E[0, 3, 1, :] = 1.0
    assert np.allclose(egomotion_score(E), [(3 + 3 + 2) / 3])
    # 4x4 input gives the same (the constant last row never changes)
    assert np.allclose(egomotion_score(geo.to_homogeneous(E)), egomotion_score(E))


def test_valid_frames_drop_pairs_and_ignore_nan():
    E = np.zeros((2, 4, 3, 4))
    E[:, 1, 0, 0] = 3.0
    E[:, 3] = np.nan  # an invalid frame may hold anything
    valid = np.array([[True, True, True, False], [True, False, True, False]])
    score = egomotion_score(E, valid)
    assert np.allclose(score[0], 3.0)  # pairs (0,1), (1,2) -> 3 and 3
    assert np.isnan(score[1])  # no pair of adjacent valid frames
    with pytest.raises(ValueError, match="extrinsics: NaN"):
        egomotion_score(E)


@FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_torch_matches_numpy_and_score_is_nonnegative(seed):
    rng = np.random.default_rng(seed)
    E = np.stack([np.concatenate([random_rotation(rng), rng.normal(size=(3, 1))], 1) for _ in range(3 * 6)])
    E = E.reshape(3, 6, 3, 4)
    valid = rng.random((3, 6)) < 0.8
    s_np = egomotion_score(E, valid)
    s_t = egomotion_score(torch.tensor(E), torch.tensor(valid))
    assert isinstance(s_t, torch.Tensor)
    assert np.allclose(s_t.numpy(), s_np, equal_nan=True)
    assert np.all(np.isnan(s_np) | (s_np >= 0))


def test_top_fraction_mask():
    scores = np.arange(20, dtype=float)  # 90th percentile (linear) = 17.1 -> windows 18 and 19
    assert np.flatnonzero(top_fraction_mask(scores)).tolist() == [18, 19]
    assert top_fraction_mask(scores, 1.0).all()
    # ties at the threshold are included; NaN windows are never selected and do not move the quantile
    scores = np.array([1.0, 5.0, 5.0, np.nan, 0.0])
    assert top_fraction_mask(scores, 0.5).tolist() == [False, True, True, False, False]
    mask_t = top_fraction_mask(torch.tensor(scores), 0.5)
    assert isinstance(mask_t, torch.Tensor) and mask_t.tolist() == [False, True, True, False, False]


def test_bad_inputs():
    with pytest.raises(ValueError, match="extrinsics: expected shape"):
        egomotion_score(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="at least 2 frames"):
        egomotion_score(np.zeros((2, 1, 3, 4)))
    with pytest.raises(ValueError, match="empty"):
        egomotion_score(np.zeros((0, 5, 3, 4)))
    with pytest.raises(ValueError, match="valid_frames"):
        egomotion_score(np.zeros((2, 5, 3, 4)), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="fraction"):
        top_fraction_mask(np.ones(3), 0.0)
    with pytest.raises(ValueError, match="scores: empty"):
        top_fraction_mask(np.ones(0))
    with pytest.raises(ValueError, match="no finite"):
        top_fraction_mask(np.full(3, np.nan))
    with pytest.raises(ValueError, match="scores: expected shape"):
        top_fraction_mask(np.ones((2, 2)))
