"""Windows: known canonical answers, both protocols' offsets, clamping, a slow per-window reference,
egomotion, statistics and WindowDataset items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egghand_lib.batch import OBS_OFFSETS, TENSOR_KEYS, VIDEO_OFFSETS, collate_windows, target_offsets
from egghand_lib.data.episodes import Episode
from egghand_lib.data.statistics import compute_stats
from egghand_lib.data.windows import WindowDataset, make_windows
from egghand_lib.geometry import canonical_transform, invert_rigid, look_at_extrinsics, to_homogeneous
from egghand_lib.normalization import minmax_normalize
from tests.fixtures.egoexo4d_takes import HAND_OFFSETS, camera_path, hands_world


def episode(E, J, valid=None, frames=None, index=0, start=0):
    n = len(E)
    return Episode(
        take_uid="take-a", episode_index=index, task="Stir the noodles.", scenario="Cooking Noodles", split="train",
        frame_numbers=start + 3 * np.arange(n, dtype=np.int64), joints=np.asarray(J, np.float32),
        valid=np.ones((n, 42), bool) if valid is None else valid, extrinsics=np.asarray(E, np.float32),
        intrinsics=np.eye(3, dtype=np.float32),
        frames=np.zeros((n, 8, 8, 3), np.uint8) if frames is None else frames,
    )


def test_translating_camera_static_joint_known_canonical_coordinates():
    # Camera heads along world +y (yaw 90 deg) at 0.05 m per step; one world point 2 m ahead of the start.
    n = 40
    E = camera_path(n, start=(1.0, 2.0), yaw0=np.pi / 2, speed=0.05)
    J = np.zeros((n, 42, 3))
    J[:, :] = (1.0, 4.0, 1.2)  # world point
    w = make_windows(episode(E, J))
    for t in (0, 19, 25, 39):
        first = max(t - 19, 0)  # first observed camera, clamped into the episode
        ahead = 2.0 - 0.05 * first
        np.testing.assert_allclose(w["past_joints"][t, -1, 0], (ahead, 0.0, -0.3), atol=1e-5)
        # canonical_T maps the first observed camera centre to the origin and its heading to +x.
        c = np.array([1.0, 2.0 + 0.05 * first, 1.5, 1.0])
        np.testing.assert_allclose(w["canonical_T"][t] @ c, (0, 0, 0, 1), atol=1e-5)
        np.testing.assert_allclose(w["canonical_T"][t][:3, :3] @ (0, 1, 0), (1, 0, 0), atol=1e-6)
    # The per-frame camera pose in the canonical frame: camera k is 0.05 * (k - first) ahead on +x.
    t = 30
    for k, off in enumerate(OBS_OFFSETS):
        P = to_homogeneous(w["past_extrinsics"][t, k].astype(np.float64))
        centre = -P[:3, :3].T @ P[:3, 3]
        np.testing.assert_allclose(centre, (0.05 * (off + 19), 0, 0), atol=1e-5)


def test_turning_camera_hand_relative_to_first_camera():
    # Rigid hands held in front of a turning camera: at offset -19 the canonical hand equals the
    # camera-relative offsets mapped (right, down, forward) -> (-y, -z, +x), whatever the world heading.
    n = 30
    E = camera_path(n, start=(-3.0, 0.5), yaw0=2.0, speed=0.02, turn=0.1)
    w = make_windows(episode(E, hands_world(E)))
    expect = np.stack([HAND_OFFSETS[:, 2], -HAND_OFFSETS[:, 0], -HAND_OFFSETS[:, 1]], -1)
    for t in (19, 24, 29):
        np.testing.assert_allclose(w["past_joints"][t, 0], expect, atol=1e-5)
    # Later observed frames have turned by 0.1 rad per step relative to the first one.
    R = w["past_extrinsics"][25, -1, :, :3]
    forward_can = R[2]  # third row of the canonical -> camera rotation = optical axis in canonical frame
    np.testing.assert_allclose(np.arctan2(forward_can[1], forward_can[0]), 19 * 0.1, atol=1e-5)


@pytest.mark.parametrize("protocol", ["future", "egghand-code"])
def test_protocol_offsets_and_clamping(protocol):
    n = 35
    E = np.repeat(look_at_extrinsics((0, 0, 1.5), (1, 0, 1.5))[None], n, 0)
    J = np.zeros((n, 42, 3))
    J[..., 0] = np.arange(n)[:, None]  # canonical x of every joint = frame index (static camera at origin)
    frames = np.zeros((n, 4, 4, 3), np.uint8)
    w = make_windows(episode(E, J, frames=frames), protocol)
    tgt = np.array(target_offsets(protocol))
    assert tgt[0] == (1 if protocol == "future" else 0) and len(tgt) == 10
    assert w["past_joints"].shape == (n, 20, 42, 3) and w["future_joints"].shape == (n, 10, 42, 3)
    for t in range(n):
        exp_f = t + tgt
        inside = exp_f < n
        np.testing.assert_array_equal(w["future_valid"][t].all(-1), inside)
        np.testing.assert_allclose(w["future_joints"][t, inside, 5, 0], exp_f[inside])
        assert (w["future_joints"][t, ~inside] == 0).all()
        exp_p = t + np.array(OBS_OFFSETS)
        np.testing.assert_array_equal(w["past_valid"][t].all(-1), exp_p >= 0)
        np.testing.assert_allclose(w["past_joints"][t, exp_p >= 0, 0, 0], exp_p[exp_p >= 0])
        np.testing.assert_array_equal(w["frame_indices"][t], np.clip(t + np.array(VIDEO_OFFSETS), 0, n - 1))
    assert w["frame_index"].tolist() == (3 * np.arange(n)).tolist()


def slow_reference_window(ep: Episode, t: int, protocol: str) -> dict:
    """One window computed directly, frame by frame, from the definitions of docs/conventions.md."""
    n = len(ep)
    clamp = lambda i: min(max(i, 0), n - 1)  # noqa: E731
    E = ep.extrinsics.astype(np.float64)
    C = canonical_transform(E[clamp(t - 19)])
    Ci = invert_rigid(C)
    out = {"canonical_T": C}
    for name, offs in (("past", OBS_OFFSETS), ("future", target_offsets(protocol))):
        J, V, X = [], [], []
        for o in offs:
            i = clamp(t + o)
            ok = ep.valid[i] & (0 <= t + o < n)
            p = np.array([C[:3, :3] @ x + C[:3, 3] if v else np.zeros(3)
                          for x, v in zip(ep.joints[i], ok, strict=True)])
            J.append(p)
            V.append(ok)
            X.append((to_homogeneous(E[i]) @ Ci)[:3])
        out[f"{name}_joints"], out[f"{name}_valid"], out[f"{name}_extrinsics"] = map(np.array, (J, V, X))
    offs = sorted(set(OBS_OFFSETS) | set(target_offsets(protocol)))
    steps = []
    for a, b in zip(offs[:-1], offs[1:], strict=True):
        if 0 <= t + a < n and 0 <= t + b < n:
            Pa = (to_homogeneous(E[t + a]) @ Ci)[:3]
            Pb = (to_homogeneous(E[t + b]) @ Ci)[:3]
            steps.append(np.linalg.norm(Pb - Pa))
    out["egomotion"] = np.mean(steps)
    out["frame_indices"] = np.array([clamp(t + o) for o in VIDEO_OFFSETS])
    return out


@pytest.mark.parametrize("protocol", ["future", "egghand-code"])
def test_vectorised_windows_equal_per_window_reference(protocol):
    rng = np.random.default_rng(0)
    n = 33
    E = camera_path(n, start=(0.3, -1.0), yaw0=0.7, speed=0.04, turn=-0.07)
    # add pitch/roll wobble so the camera is not level
    for k in range(n):
        a = 0.1 * np.sin(k)
        Rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        E[k, :, :3] = Rx @ E[k, :, :3]
        E[k, :, 3] = Rx @ E[k, :, 3]
    J = hands_world(E) + rng.normal(0, 0.01, (n, 42, 3))
    valid = rng.random((n, 42)) > 0.2
    ep = episode(E, np.where(valid[..., None], J, 0), valid)
    w = make_windows(ep, protocol)
    for t in range(n):
        ref = slow_reference_window(ep, t, protocol)
        for k, v in ref.items():
            np.testing.assert_allclose(w[k][t], v, atol=2e-5, err_msg=f"{k} at t={t}")
        np.testing.assert_array_equal(w["past_valid"][t], ref["past_valid"])


def test_egomotion_static_and_translating_camera():
    n = 40
    static = camera_path(n)
    w = make_windows(episode(static, hands_world(static)))
    np.testing.assert_allclose(w["egomotion"], 0, atol=1e-6)
    moving = camera_path(n, speed=0.07)  # no rotation: ||E_t - E_{t-1}||_F = |translation step|
    w = make_windows(episode(moving, hands_world(moving)))
    np.testing.assert_allclose(w["egomotion"], 0.07, atol=1e-5)
    turning = camera_path(n, turn=0.2)
    assert (make_windows(episode(turning, hands_world(turning)))["egomotion"] > 0.2).all()


def test_stats_use_valid_joints_only_and_constant_dims_map_to_zero():
    n = 30
    E = camera_path(n, speed=0.03, turn=0.05)
    J = hands_world(E)
    valid = np.ones((n, 42), bool)
    valid[::4, 7] = False
    J[~valid] = 1000.0  # garbage at invalid joints must not enter the statistics
    eps = [episode(E, J, valid), episode(camera_path(25, yaw0=1.0), hands_world(camera_path(25, yaw0=1.0)), index=1)]
    stats = compute_stats(eps)
    ws = [make_windows(e) for e in eps]
    pj = np.concatenate([w["past_joints"].reshape(-1, 42, 3) for w in ws])
    pv = np.concatenate([w["past_valid"].reshape(-1, 42) for w in ws])
    for j in (0, 7, 30):
        np.testing.assert_allclose(stats.state_min[3 * j:3 * j + 3], pj[pv[:, j], j].min(0), atol=1e-6)
        np.testing.assert_allclose(stats.state_max[3 * j:3 * j + 3], pj[pv[:, j], j].max(0), atol=1e-6)
    assert float(stats.state_max.abs().max()) < 10
    fj = np.concatenate([w["future_joints"].reshape(-1, 42, 3) for w in ws])
    fv = np.concatenate([w["future_valid"].reshape(-1, 42) for w in ws])
    np.testing.assert_allclose(stats.action_max[:3], fj[fv[:, 0], 0].max(0), atol=1e-6)
    assert stats.state_min.shape == (138,) and stats.action_min.shape == (126,)
    # level camera: the (2, 2) entry of the canonical camera rotation is constant (0), so min == max
    assert stats.state_min[126 + 10] == stats.state_max[126 + 10]
    x = torch.stack([stats.state_min, stats.state_max])
    y = minmax_normalize(x, stats.state_min, stats.state_max)
    assert (y[:, 136] == 0).all()
    varying = stats.state_max > stats.state_min
    assert torch.allclose(y[0, varying], torch.tensor(-1.0)) and torch.allclose(y[1, varying], torch.tensor(1.0))


def test_window_dataset_items_follow_batch_contract():
    n1, n2 = 24, 31
    eps = []
    for idx, n in enumerate((n1, n2)):
        E = camera_path(n, speed=0.02)
        frames = np.zeros((n, 6, 6, 3), np.uint8)
        frames[:, :, :, 0] = np.arange(n)[:, None, None]  # frame id in the red channel
        eps.append(episode(E, hands_world(E), frames=frames, index=idx, start=9 * idx))
    ds = WindowDataset.from_episodes(eps, protocol="egghand-code")
    assert len(ds) == n1 + n2
    item = ds[n1 + 20]
    shapes = {"past_joints": (20, 42, 3), "past_valid": (20, 42), "past_extrinsics": (20, 3, 4),
              "future_joints": (10, 42, 3), "future_valid": (10, 42), "future_extrinsics": (10, 3, 4),
              "frames": (4, 3, 6, 6), "egomotion": (), "canonical_T": (4, 4), "episode_index": (),
              "frame_index": ()}
    assert set(TENSOR_KEYS) <= set(item)
    for k, s in shapes.items():
        assert tuple(item[k].shape) == s, k
    assert item["frames"].dtype == torch.uint8 and item["past_valid"].dtype == torch.bool
    assert item["past_joints"].dtype == torch.float32
    assert item["frames"][:, 0, 0, 0].tolist() == [2, 8, 14, 20]
    assert int(item["episode_index"]) == 1 and int(item["frame_index"]) == 9 + 3 * 20
    assert item["task"] == "Stir the noodles." and item["scenario"] == "Cooking Noodles"
    batch = collate_windows([ds[i] for i in (0, 5, n1 + 3)])
    assert batch["past_joints"].shape == (3, 20, 42, 3) and batch["frames"].shape == (3, 4, 3, 6, 6)
    assert ds.collate_fn is collate_windows or ds.collate_fn == collate_windows
    arrays = ds.arrays()
    np.testing.assert_array_equal(arrays["future_joints"][n1 + 20], item["future_joints"].numpy())
    with pytest.raises(IndexError):
        ds[n1 + n2]
    loader = torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=ds.collate_fn)
    assert sum(b["frames"].shape[0] for b in loader) == n1 + n2
