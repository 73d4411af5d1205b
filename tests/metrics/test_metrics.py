"""Metrics in both conventions (docs/conventions.md, "Metrics"): hand-computed values, invariances, masking,
bad input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from egghand_lib import metrics as M
from tests.fixtures.random_arrays import FAST, fill_invalid, random_forecast, random_rotation


def hand_example():
    """N=2 samples, T=2 frames, gt all at the origin; errors chosen by hand (see the expected values).

    wrist errors: s0f0 right 3, left 5; s0f1 right 2, left 6; s1f0 none valid; s1f1 left 3.
    other valid joints: s0f0 j1 (rel 4, abs 5), j22 (rel 0, abs 5); s0f1 j5 (rel 0, abs 2);
    s1f0 j2 (abs 1; its wrist is invalid, so not in the relative pool); s1f1 j30 (rel 4, abs 5).
    """
    pred = np.full((2, 2, 42, 3), np.nan)  # invalid joints hold NaN: they must never be read
    gt = np.full((2, 2, 42, 3), np.nan)
    valid = np.zeros((2, 2, 42), bool)
    entries = {
        (0, 0, 0): (3, 0, 0), (0, 0, 1): (3, 4, 0), (0, 0, 21): (0, 0, 5), (0, 0, 22): (0, 0, 5),
        (0, 1, 0): (0, 2, 0), (0, 1, 5): (0, 2, 0), (0, 1, 21): (0, 0, 6),
        (1, 0, 2): (1, 0, 0),
        (1, 1, 21): (3, 0, 0), (1, 1, 30): (3, 4, 0),
    }
    for idx, p in entries.items():
        pred[idx], gt[idx], valid[idx] = p, 0.0, True
    return pred, gt, valid


HAND_EXPECTED = {
    # ADE: s0 = mean(mean(3, 5), mean(2, 6)) = 4, s1 = 3 -> 3.5; FDE: (4 + 3) / 2.
    # MPJPE (relative): 9 entries (wrists count with 0) summing to 4 + 4 = 8; final frame: 4 over 5.
    "egghand": {"ade": 3.5, "fde": 3.5, "mpjpe": 8 / 9, "mpjpe_f": 4 / 5},
    # pooled: wrists 3 + 5 + 2 + 6 + 3 over 5; final 2 + 6 + 3 over 3; absolute joints 37 / 10 and 18 / 5.
    "egoh4": {"ade": 19 / 5, "fde": 11 / 3, "mpjpe": 37 / 10, "mpjpe_f": 18 / 5},
}


@pytest.mark.parametrize("convention", M.CONVENTIONS)
def test_hand_computed_example(convention):
    pred, gt, valid = hand_example()
    out = M.forecast_metrics(pred, gt, valid, convention)
    assert set(out) == set(M.METRIC_KEYS) and all(type(v) is float for v in out.values())
    assert out == pytest.approx(HAND_EXPECTED[convention])
    out_t = M.forecast_metrics(torch.tensor(pred), torch.tensor(gt, dtype=torch.float32), torch.tensor(valid),
                               convention)
    assert out_t == pytest.approx(HAND_EXPECTED[convention], rel=1e-6)


def test_hand_computed_per_horizon_per_hand_and_best_of_k():
    pred, gt, valid = hand_example()
    curves = M.per_horizon_errors(pred, gt, valid, "egghand")
    assert np.allclose(curves["ade"], [4.0, 3.5]) and np.allclose(curves["mpjpe"], [1.0, 0.8])
    curves = M.per_horizon_errors(pred, gt, valid, "egoh4")
    assert np.allclose(curves["ade"], [4.0, 11 / 3]) and np.allclose(curves["mpjpe"], [19 / 5, 18 / 5])

    hands = M.per_hand_metrics(pred, gt, valid, "egghand")
    assert hands["right"] == pytest.approx({"ade": 2.5, "fde": 2.0, "mpjpe": 1.0, "mpjpe_f": 0.0})
    assert hands["left"] == pytest.approx({"ade": 4.25, "fde": 4.5, "mpjpe": 0.8, "mpjpe_f": 4 / 3})
    hands = M.per_hand_metrics(pred, gt, valid, "egoh4")
    assert hands["right"] == pytest.approx({"ade": 2.5, "fde": 2.0, "mpjpe": 13 / 5, "mpjpe_f": 2.0})
    assert hands["left"] == pytest.approx({"ade": 14 / 3, "fde": 4.5, "mpjpe": 24 / 5, "mpjpe_f": 14 / 3})

    # K = 2: sample 0 has a perfect forecast as its second option, sample 1 a worse (doubled) one.
    second = pred.copy()
    second[0] = 0.0
    second[1] = 2 * pred[1]
    samples = np.stack([pred, second], axis=1)
    assert M.best_of_k(samples, gt, valid, "egghand") == pytest.approx(
        {"ade": 1.5, "fde": 1.5, "mpjpe": 4 / 9, "mpjpe_f": 4 / 5})
    assert M.best_of_k(samples, gt, valid, "egoh4") == pytest.approx(
        {"ade": 3 / 5, "fde": 1.0, "mpjpe": 9 / 10, "mpjpe_f": 8 / 5})


def test_metrics_by_group_hand_computed():
    pred, gt, valid = hand_example()
    out = M.metrics_by_group(pred, gt, valid, ["pour", "wipe"], "egghand")
    assert list(out) == ["pour", "wipe", "all"]
    assert out["pour"] == pytest.approx({"ade": 4.0, "fde": 4.0, "mpjpe": 4 / 7, "mpjpe_f": 0.0, "num_samples": 1})
    assert out["wipe"] == pytest.approx({"ade": 3.0, "fde": 3.0, "mpjpe": 2.0, "mpjpe_f": 2.0, "num_samples": 1})
    assert out["all"] == pytest.approx({**HAND_EXPECTED["egghand"], "num_samples": 2})


def test_no_valid_entries_give_nan():
    pred, gt, valid = hand_example()
    valid[:, :, 21:] = False
    valid[:, :, 0] = False  # no wrist anywhere: ADE/FDE/relative MPJPE have nothing to average
    out = M.forecast_metrics(pred, gt, valid, "egghand")
    assert all(math.isnan(out[k]) for k in M.METRIC_KEYS)
    out = M.forecast_metrics(pred, gt, valid, "egoh4")
    assert math.isnan(out["ade"]) and math.isnan(out["fde"])
    assert out["mpjpe"] == pytest.approx((5 + 2 + 1) / 3) and out["mpjpe_f"] == pytest.approx(2.0)
    curves = M.per_horizon_errors(pred, gt, valid, "egoh4")
    assert np.isnan(curves["ade"]).all() and np.allclose(curves["mpjpe"], [3.0, 2.0])


@FAST
@given(seed=st.integers(0, 2**32 - 1), convention=st.sampled_from(M.CONVENTIONS), fill=st.sampled_from([np.nan, 1e6]))
def test_invalid_joints_are_ignored(seed, convention, fill):
    rng = np.random.default_rng(seed)
    pred, gt, valid = random_forecast(rng)
    ref = M.forecast_metrics(pred, gt, valid, convention)
    out = M.forecast_metrics(fill_invalid(pred, valid, fill), fill_invalid(gt, valid, -fill), valid, convention)
    assert out == pytest.approx(ref, nan_ok=True)
    samples = np.stack([pred, pred + 0.01], 1)
    ref_k = M.best_of_k(samples, gt, valid, convention)
    noisy = np.where(valid[:, None, ..., None], samples, fill)
    assert M.best_of_k(noisy, fill_invalid(gt, valid, fill), valid, convention) == pytest.approx(ref_k, nan_ok=True)
    assert M.sample_spread(noisy, valid) == pytest.approx(M.sample_spread(samples, valid))


@FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_relative_mpjpe_ignores_per_hand_translation(seed):
    rng = np.random.default_rng(seed)
    pred, gt, valid = random_forecast(rng)
    shift = rng.normal(size=(3, 4, 2, 1, 3))  # one translation per sample, frame and hand
    moved = pred + np.repeat(shift, 21, axis=3).reshape(pred.shape)
    a, b = M.forecast_metrics(pred, gt, valid), M.forecast_metrics(moved, gt, valid)
    assert b["mpjpe"] == pytest.approx(a["mpjpe"], nan_ok=True)
    assert b["mpjpe_f"] == pytest.approx(a["mpjpe_f"], nan_ok=True)
    # ...while the absolute (egoh4) MPJPE and the wrist ADE do see it
    if valid.any():
        assert M.forecast_metrics(moved, gt, valid, "egoh4")["mpjpe"] != pytest.approx(
            M.forecast_metrics(pred, gt, valid, "egoh4")["mpjpe"])


@FAST
@given(seed=st.integers(0, 2**32 - 1), convention=st.sampled_from(M.CONVENTIONS))
def test_all_metrics_unchanged_by_one_rigid_motion(seed, convention):
    rng = np.random.default_rng(seed)
    pred, gt, valid = random_forecast(rng)
    R, t = random_rotation(rng), rng.normal(size=3)
    move = lambda x: x @ R.T + t  # noqa: E731
    a = M.forecast_metrics(pred, gt, valid, convention)
    b = M.forecast_metrics(move(pred), move(gt), valid, convention)
    assert b == pytest.approx(a, nan_ok=True)
    ca, cb = M.per_horizon_errors(pred, gt, valid, convention), M.per_horizon_errors(move(pred), move(gt), valid,
                                                                                     convention)
    assert all(np.allclose(ca[k], cb[k], equal_nan=True) for k in ca)


@FAST
@given(seed=st.integers(0, 2**32 - 1), convention=st.sampled_from(M.CONVENTIONS))
def test_breakdowns_are_consistent(seed, convention):
    rng = np.random.default_rng(seed)
    pred, gt, valid = random_forecast(rng, n=5, t=3)
    full = M.forecast_metrics(pred, gt, valid, convention)
    curves = M.per_horizon_errors(pred, gt, valid, convention)
    assert curves["ade"][-1] == pytest.approx(full["fde"], nan_ok=True)
    assert curves["mpjpe"][-1] == pytest.approx(full["mpjpe_f"], nan_ok=True)
    # groups are exact subsets; K = 1 best-of-K is the plain metric; best-of-K never exceeds any option
    groups = ["a", "b", "a", "c", "b"]
    by = M.metrics_by_group(pred, gt, valid, groups, convention)
    sel = np.array(groups) == "a"
    a_only = M.forecast_metrics(pred[sel], gt[sel], valid[sel], convention)
    assert {k: by["a"][k] for k in M.METRIC_KEYS} == pytest.approx(a_only, nan_ok=True)
    assert M.best_of_k(pred[:, None], gt, valid, convention) == pytest.approx(full, nan_ok=True)
    other = gt + rng.normal(scale=0.05, size=gt.shape)
    best = M.best_of_k(np.stack([pred, other], 1), gt, valid, convention)
    worse = M.forecast_metrics(other, gt, valid, convention)
    for k in M.METRIC_KEYS:
        if not math.isnan(best[k]):
            assert best[k] <= min(full[k], worse[k]) + 1e-12


def test_sample_spread():
    x = np.zeros((1, 3, 1, 42, 3))
    x[0, 1, ..., 0] = 1.0
    x[0, 2, ..., 1] = 1.0  # pairwise distances 1, 1, sqrt(2)
    assert M.sample_spread(x) == pytest.approx((2 + math.sqrt(2)) / 3)
    assert M.sample_spread(np.repeat(x[:, :1], 4, axis=1)) == 0.0
    valid = np.zeros((1, 1, 42), bool)
    assert math.isnan(M.sample_spread(x, valid))
    with pytest.raises(ValueError, match="K >= 2"):
        M.sample_spread(x[:, :1])


def test_bad_inputs():
    pred, gt, valid = random_forecast(np.random.default_rng(0))
    with pytest.raises(ValueError, match="pred: expected joints"):
        M.forecast_metrics(pred[..., :2], gt, valid)
    with pytest.raises(ValueError, match="pred: expected 4 dimensions"):
        M.forecast_metrics(pred[0], gt[0], valid[0])
    with pytest.raises(ValueError, match="gt: shape"):
        M.forecast_metrics(pred, gt[:, :2], valid)
    with pytest.raises(ValueError, match="valid: mask shape"):
        M.forecast_metrics(pred, gt, valid[:, :, :21])
    with pytest.raises(ValueError, match="valid: expected a bool mask"):
        M.forecast_metrics(pred, gt, valid * 0.5)
    bad = gt.copy()
    bad[np.nonzero(valid)[0][0], np.nonzero(valid)[1][0], np.nonzero(valid)[2][0], 1] = np.nan
    with pytest.raises(ValueError, match="gt: NaN or inf in a valid entry"):
        M.forecast_metrics(pred, bad, valid)
    with pytest.raises(ValueError, match="pred: NaN or inf"):
        M.forecast_metrics(np.where(valid[..., None], np.inf, pred), gt, valid)
    with pytest.raises(ValueError, match="pred: empty selection"):
        M.forecast_metrics(pred[:0], gt[:0], valid[:0])
    with pytest.raises(ValueError, match="convention"):
        M.forecast_metrics(pred, gt, valid, "paper")
    with pytest.raises(ValueError, match="groups"):
        M.metrics_by_group(pred, gt, valid, ["a"])
    with pytest.raises(ValueError, match="reserved"):
        M.metrics_by_group(pred, gt, valid, ["all", "b", "c"])
    with pytest.raises(ValueError, match="samples: empty selection"):
        M.best_of_k(pred[:, None][:, :0], gt, valid)
    with pytest.raises(ValueError, match="samples: NaN"):
        M.best_of_k(np.where(valid[:, None, ..., None], np.nan, pred[:, None]), gt, valid)


@pytest.mark.parametrize("convention", M.CONVENTIONS)
def test_chunking_over_samples_is_exact(convention, monkeypatch):
    pred, gt, valid = random_forecast(np.random.default_rng(5), n=7, t=3)
    samples = np.stack([pred, gt + 0.02, pred - 0.01], 1)
    groups = list("abcabca")
    ref = (M.forecast_metrics(pred, gt, valid, convention), M.per_horizon_errors(pred, gt, valid, convention),
           M.best_of_k(samples, gt, valid, convention), M.sample_spread(samples, valid),
           M.metrics_by_group(pred, gt, valid, groups, convention))
    monkeypatch.setattr(M, "_CHUNK_COORDS", 2 * 3 * 42 * 3 * 3)  # 2 samples (or fewer) per chunk
    out = (M.forecast_metrics(pred, gt, valid, convention), M.per_horizon_errors(pred, gt, valid, convention),
           M.best_of_k(samples, gt, valid, convention), M.sample_spread(samples, valid),
           M.metrics_by_group(pred, gt, valid, groups, convention))
    assert out[0] == pytest.approx(ref[0]) and out[2] == pytest.approx(ref[2]) and out[3] == pytest.approx(ref[3])
    assert all(np.allclose(out[1][k], ref[1][k], equal_nan=True) for k in ref[1])
    assert all(out[4][g] == pytest.approx(ref[4][g]) for g in ref[4])
    with pytest.raises(ValueError, match="valid: mask shape"):  # checked on the whole, not per chunk
        M.forecast_metrics(pred, gt, valid[:6], convention)
