"""egghand_lib.viz.overlays: projections are exact, rasters and overlays draw only the visible valid joints."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from egghand_lib import viz
from egghand_lib.geometry import look_at_extrinsics
from tests.fixtures.hand_scenes import two_hands, window


def test_project_points_hand_computed_camera():
    K = np.array([[100.0, 0, 50], [0, 120.0, 40], [0, 0, 1]])
    E = np.concatenate([np.eye(3), np.zeros((3, 1))], axis=1)
    E[:, 3] = (0.0, 0.0, 1.0)  # camera 1 m behind the world origin along its optical axis
    P = np.array([[0.0, 0.0, 0.0], [0.1, -0.2, 1.0], [0.0, 0.0, -2.0]])
    uv, z = viz.project_points(P, E, K)
    assert np.allclose(uv[0], [50, 40]) and z[0] == pytest.approx(1.0)
    assert np.allclose(uv[1], [50 + 100 * 0.1 / 2, 40 - 120 * 0.2 / 2])  # (55, 28)
    assert np.isnan(uv[2]).all() and z[2] < 0  # behind the camera
    vis = viz.visible_in_image(uv, z, (100, 80), valid=np.array([True, False, True]))
    assert vis.tolist() == [True, False, False]
    # A look-at camera puts its target on the principal point, and world "up" towards the image top.
    E2 = look_at_extrinsics([0, 0, 1.5], [1, 0, 1.5])
    uv2, _ = viz.project_points(np.array([[1.0, 0, 1.5], [1.0, 0, 1.6]]), E2, K)
    assert np.allclose(uv2[0], [50, 40]) and uv2[1, 1] < 40
    # Frustum base corners project onto the image corners.
    corners = viz.frustum_points(E2, K, (100, 80), depth=0.3)
    uvc, _ = viz.project_points(corners[[1, 4, 7, 10]], E2, K)
    assert np.allclose(uvc, [[0, 0], [100, 0], [100, 80], [0, 80]], atol=1e-6)


def test_draw_skeleton_paints_visible_joints_only():
    K = np.array([[200.0, 0, 80], [0, 200.0, 60], [0, 0, 1]])
    E = look_at_extrinsics([0, 0, 0], [1, 0, -0.6])
    J = two_hands()
    uv, z = viz.project_points(J, E, K)
    valid = np.ones(42, bool)
    valid[20] = False  # right pinky tip
    m = viz.visible_in_image(uv, z, (160, 120), valid)
    assert m.sum() == 41
    img = np.zeros((120, 160, 3), np.uint8)
    out = viz.draw_skeleton(img, uv, m, color="#ff0000", radius=0, draw_bones=False)
    assert img.sum() == 0  # the input is not modified
    drawn = np.argwhere(out[..., 0] == 255)
    expected = {tuple(p) for p in np.rint(uv[m][:, ::-1]).astype(int)}
    assert {tuple(p) for p in drawn} == expected
    tip = tuple(np.rint(uv[20, ::-1]).astype(int))  # (row, col) of the invalid pinky tip
    assert tip not in expected and out[tip].sum() == 0
    with_bones = viz.draw_skeleton(img, uv, m, color="#00ff00", radius=1)
    assert (with_bones[..., 1] == 255).sum() > (out[..., 0] == 255).sum()


def test_overlay_figure_draws_valid_visible_joints():
    w = window()
    K = np.array([[60.0, 0, 40], [0, 60.0, 32], [0, 0, 1]])
    idx = [1, 7, 13, 19]
    valid = w["past_valid"][idx].numpy().copy()
    valid[2, :21] = False  # the right hand is missing on the third frame
    fig = viz.overlay_figure(w["frames"], {"observed": (w["past_joints"][idx], valid)}, w["past_extrinsics"][idx],
                             K, titles=["a", "b", "c", "d"])
    uv, z = viz.project_points(w["past_joints"][idx].numpy(), w["past_extrinsics"][idx].numpy(), K)
    vis = viz.visible_in_image(uv, z, (80, 64), valid)
    assert vis.sum() > 40  # the test camera sees the hands
    counts = [len(ax.collections[0].get_offsets()) for ax in fig.axes]
    assert counts == vis.sum(1).tolist() and counts[2] <= 21
    wf = viz.window_overlay_figure(w, K, forecast=w["future_joints"].numpy() + 0.01)
    assert [c.get_label() for c in wf.axes[3].collections] == ["observed", "ground truth", "forecast"]
    plt.close("all")
