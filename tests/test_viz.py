"""egghand_lib.viz: figures carry the expected traces and frames, meshes and projections are exact."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import trimesh  # noqa: E402

from egghand_lib import viz  # noqa: E402
from egghand_lib.geometry import (  # noqa: E402
    camera_center,
    canonical_transform,
    invert_rigid,
    look_at_extrinsics,
    transform_points,
)
from egghand_lib.skeleton import BONES, WRIST_INDICES  # noqa: E402


def two_hands(shift=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A plausible open two-hand pose (42, 3) in front of a camera looking along +x, z up."""
    J = np.zeros((42, 3))
    for h, side in ((0, -1.0), (1, 1.0)):
        base = h * 21
        J[base] = (0.35, side * 0.12, -0.25)
        for f in range(5):
            spread = (f - 2) * 0.018
            for k in range(4):
                J[base + 1 + 4 * f + k] = J[base] + (0.04 + 0.025 * k, side * spread, 0.004 * k)
    return J + np.asarray(shift)


def window(n_obs=20, n_tgt=10, seed=0) -> dict:
    """A window dict in the batch layout, canonicalised from a world camera that looks at the hands."""
    rng = np.random.default_rng(seed)
    eye = np.array([1.0, 2.0, 1.5])
    world_E = look_at_extrinsics(eye, eye + np.array([0.8, 0.6, -0.4]))
    T = canonical_transform(world_E)  # world -> canonical
    to_world = invert_rigid(T)
    past = np.stack([two_hands((0.01 * t, 0, 0)) for t in range(n_obs)])
    fut = np.stack([two_hands((0.01 * (n_obs + t), 0.005 * t, 0)) for t in range(n_tgt)])
    cam_E = np.stack([(np.concatenate([world_E, [[0, 0, 0, 1]]]) @ to_world)[:3] for _ in range(n_obs + n_tgt)])
    return {
        "past_joints": torch.tensor(past, dtype=torch.float32),
        "past_valid": torch.ones(n_obs, 42, dtype=torch.bool),
        "past_extrinsics": torch.tensor(cam_E[:n_obs], dtype=torch.float32),
        "future_joints": torch.tensor(fut, dtype=torch.float32),
        "future_valid": torch.ones(n_tgt, 42, dtype=torch.bool),
        "future_extrinsics": torch.tensor(cam_E[n_obs:], dtype=torch.float32),
        "frames": torch.tensor(rng.integers(0, 255, (4, 3, 64, 80)), dtype=torch.uint8),
        "canonical_T": torch.tensor(T, dtype=torch.float32),
        "task": "pick up the red cup",
    }


def finite_points(trace) -> np.ndarray:
    P = np.stack([np.asarray(trace.x, float), np.asarray(trace.y, float), np.asarray(trace.z, float)], 1)
    return P[np.isfinite(P).all(1)]


def test_skeleton_segments_drop_invalid_joints_and_their_bones():
    J = two_hands()
    assert len(viz.skeleton_segments(J)) == 3 * len(BONES)  # parent, child, gap per bone
    valid = np.ones(42, bool)
    valid[6] = False  # right_index_2: bones 5-6 and 6-7 go
    seg = viz.skeleton_segments(J, valid)
    assert len(seg) == 3 * (len(BONES) - 2)
    assert not np.any(np.all(np.isclose(seg, J[6]), axis=1))
    # Joint 5 keeps its bone to the wrist, joint 7 its bone to 8: both still drawn.
    for j in (5, 7, 8):
        assert np.any(np.all(np.isclose(seg, J[j]), axis=1))
    # An isolated valid joint (all its neighbours missing) still shows as a lone marker.
    only = np.zeros(42, bool)
    only[3] = True
    seg = viz.skeleton_segments(J, only)
    assert seg.shape == (2, 3) and np.allclose(seg[0], J[3]) and np.isnan(seg[1]).all()


def test_forecast_figure_traces_frames_and_controls():
    w = window()
    pred = w["future_joints"].numpy() + 0.02
    past_valid = w["past_valid"].clone()
    past_valid[5, 10] = False
    w["past_joints"][5, 10] = 9.0  # a sentinel far away: must never be drawn
    fig = viz.forecast_figure(w["past_joints"], past_valid, w["future_joints"], w["future_valid"], pred, None,
                              w["past_extrinsics"], w["future_extrinsics"], title="demo")
    names = [t.name for t in fig.data]
    assert names[:4] == ["observed", "ground truth", "forecast", "camera"]
    assert names[4:] == ["observed wrists", "ground truth wrists", "forecast wrists"]
    colors = [t.line.color for t in fig.data[:4]]
    assert colors == [viz.COLORS[r] for r in ("observed", "ground truth", "forecast", "camera")]
    assert len(set(colors)) == 4
    # 20 observed + 10 target offsets, named t-19 .. t+10, each updating the 4 animated traces.
    assert [f.name for f in fig.frames] == [f"t{o:+d}" for o in range(-19, 11)]
    assert all(list(f.traces) == [0, 1, 2, 3] and len(f.data) == 4 for f in fig.frames)
    by_name = {f.name: f for f in fig.frames}
    assert len(finite_points(by_name["t-5"].data[1])) == 0  # no ground truth before t
    assert len(finite_points(by_name["t-5"].data[0])) > 0
    assert len(finite_points(by_name["t+3"].data[0])) == 0  # no observation after t
    gt3 = finite_points(by_name["t+3"].data[1])
    assert np.allclose(np.unique(gt3, axis=0), np.unique(w["future_joints"][2].numpy().astype(float), axis=0),
                       atol=1e-6)
    fc3 = finite_points(by_name["t+3"].data[2])
    assert np.allclose(fc3.min(0), pred[2].min(0), atol=1e-6)
    # The invalid joint is in no frame; the camera apex is the camera centre at every frame.
    for f in fig.frames:
        assert not np.any(np.isclose(finite_points(f.data[0]), 9.0).all(1))
    apex = finite_points(by_name["t-19"].data[3])[0]
    assert np.allclose(apex, camera_center(w["past_extrinsics"][0].numpy().astype(float)), atol=1e-5)
    # Slider with one step per frame opening at t, and a Play button.
    assert len(fig.layout.sliders[0].steps) == 30 and fig.layout.sliders[0].active == 19
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["Play", "Pause"]


def test_forecast_figure_protocol_egghand_code_and_hypotheses():
    w = window()
    hyp = np.stack([w["future_joints"].numpy() + 0.01 * k for k in range(3)])
    fig = viz.forecast_figure(w["past_joints"], w["past_valid"], w["future_joints"], w["future_valid"],
                              hypotheses=hyp, protocol="egghand-code")
    assert [f.name for f in fig.frames] == [f"t{o:+d}" for o in range(-19, 10)]  # targets 0..9 overlap t
    t0 = {f.name: f for f in fig.frames}["t+0"]
    assert len(finite_points(t0.data[0])) > 0 and len(finite_points(t0.data[1])) > 0
    assert [t.name for t in fig.data][-3:] == ["hypothesis 0", "hypothesis 1", "hypothesis 2"]
    assert all(t.line.color == viz.COLORS["hypothesis"] for t in fig.data[-3:])
    with pytest.raises(ValueError, match="protocol"):
        viz.forecast_figure(w["past_joints"], protocol="nope")
    with pytest.raises(ValueError, match="past"):
        viz.forecast_figure(np.zeros((20, 21, 3)))


def test_window_figure_world_frame_undoes_canonicalisation():
    w = window()
    can = viz.window_figure(w, frame="canonical")
    world = viz.window_figure(w, frame="world")
    T = w["canonical_T"].numpy().astype(float)
    obs_can = finite_points(can.frames[0].data[0])
    obs_world = finite_points(world.frames[0].data[0])
    assert np.allclose(obs_world, transform_points(invert_rigid(T), obs_can), atol=1e-4)
    # In the canonical frame the first camera sits at the origin; in the world frame at its world centre.
    assert np.allclose(finite_points(can.frames[0].data[3])[0], 0.0, atol=1e-5)
    assert np.allclose(finite_points(world.frames[0].data[3])[0], [1.0, 2.0, 1.5], atol=1e-4)
    assert "canonical" in can.layout.title.text and "world" in world.layout.title.text
    with pytest.raises(ValueError, match="frame"):
        viz.window_figure(w, frame="camera")


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


def test_hand_mesh_glb_roundtrip(tmp_path):
    J = two_hands()
    valid = np.ones(42, bool)
    valid[[4, 30]] = False
    mesh = viz.hand_mesh(J, valid)
    n_bones = sum(valid[p] and valid[c] for p, c in BONES)
    assert n_bones == 37  # thumb tip 4 has one bone, left middle_1 (30) two
    expected = viz.hand_mesh_vertex_count(valid)
    assert expected == 40 * 42 + 37 * 66
    assert len(mesh.vertices) == expected
    # The capsule of bone wrist->thumb_1 spans the bone (plus its round caps).
    gt = viz.hand_mesh(J, np.ones(42, bool), color=viz.COLORS["ground truth"])
    path = viz.export_glb({"forecast": mesh, "ground_truth": gt}, tmp_path / "hands.glb")
    scene = trimesh.load(path, force="scene")
    assert sorted(scene.geometry) == ["forecast", "ground_truth"]
    assert len(scene.geometry["forecast"].vertices) == expected
    assert len(scene.geometry["ground_truth"].vertices) == viz.hand_mesh_vertex_count(np.ones(42, bool))
    assert np.allclose(scene.geometry["forecast"].bounds, mesh.bounds, atol=1e-5)
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ValueError, match="empty"):
        viz.export_glb(viz.hand_mesh(J, np.zeros(42, bool)), tmp_path / "empty.glb")


def test_explorer_update_and_widget_wiring():
    windows = [window(seed=0), window(seed=1)]
    windows[1]["task"] = "wipe the table"
    seen = []

    def forecast_fn(w):
        seen.append(w["task"])
        return w["future_joints"][None] + 0.03  # (1, 10, 42, 3) is accepted

    fig, used, pred = viz.explorer_update(windows[0], "pour water into the bowl", forecast_fn)
    assert seen == ["pour water into the bowl"] and used["task"] == "pour water into the bowl"
    assert windows[0]["task"] == "pick up the red cup"  # not mutated
    assert pred.shape == (10, 42, 3) and fig.data[2].name == "forecast"
    assert "pour water" in fig.layout.title.text
    with pytest.raises(ValueError, match="forecast_fn"):
        viz.explorer_update(windows[0], None, lambda w: np.zeros((42, 3)))

    ui = viz.forecast_explorer(lambda i: windows[i], 2, forecast_fn)
    assert ui.prompt.value == "pick up the red cup"
    ui.index.value = 1
    assert ui.prompt.value == "wipe the table"
    ui.prompt.value = "twist the lid"
    ui.frame.value = "world"
    ui.button.click()
    assert seen[-1] == "twist the lid" and "world" in ui.state["figure"].layout.title.text
    assert len(ui.output.outputs) == 1  # the figure replaced whatever the panel showed before
    data = ui.output.outputs[0]["data"]
    assert data["application/vnd.plotly.v1+json"]["layout"]["title"]["text"].startswith("twist the lid")
    assert len(data["application/vnd.plotly.v1+json"]["frames"]) == 30 and "<div" in data["text/html"]
    ui.button.click()
    assert len(ui.output.outputs) == 1


def test_result_figures_and_table():
    curves = {"Static": np.linspace(0.2, 0.3, 10), "CVM": np.linspace(0.1, 0.5, 10), "EggHand": np.full(10, 0.1)}
    fig = viz.horizon_error_figure(curves, ylabel="ADE (m)")
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["Static", "CVM", "EggHand"]
    assert lines[2].get_color() == viz.METHOD_COLORS["EggHand"]
    assert np.allclose(lines[0].get_xdata(), np.arange(1, 11) / 10)
    with pytest.raises(ValueError, match="CVM"):
        viz.horizon_error_figure({"CVM": np.zeros(3)}, offsets=[1, 2])
    table = {"pour": {"CVM": 0.3, "EggHand": 0.2}, "wipe": {"CVM": 0.25, "EggHand": 0.15},
             "twist": {"CVM": 0.4, "EggHand": 0.1}}
    fig = viz.per_task_bar_figure(table)
    assert len(fig.axes[0].patches) == 6
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["pour", "wipe", "twist"]
    rows = {"full": {"ade": 0.2, "fde": 0.3, "mpjpe": 0.05, "mpjpe_f": 0.06},
            "noisy vision": {"ade": 0.25, "fde": 0.28, "mpjpe": 0.07, "mpjpe_f": 0.08}}
    fig = viz.ablation_bar_figure(rows)
    assert len(fig.axes[0].patches) == 8
    md = viz.metrics_table_markdown(rows, extra={"full": {"vision": "✓"}, "noisy vision": {"vision": "noise"}})
    lines = md.splitlines()
    assert lines[0] == "| method | vision | ADE | FDE | MPJPE | MPJPE-F |"
    assert lines[2] == "| full | ✓ | **0.200** | 0.300 | **0.050** | **0.060** |"
    assert lines[3] == "| noisy vision | noise | 0.250 | **0.280** | 0.070 | 0.080 |"
    plt.close("all")


def test_trajectory_and_prompt_comparison_figures(tmp_path):
    w = window()
    joints = np.concatenate([w["past_joints"].numpy(), w["future_joints"].numpy()])
    valid = np.ones(joints.shape[:2], bool)
    valid[3:6, WRIST_INDICES[0]] = False
    E = np.concatenate([w["past_extrinsics"].numpy(), w["future_extrinsics"].numpy()])
    fig = viz.trajectory_figure(joints, valid, E, camera_every=10)
    assert [t.name for t in fig.data] == ["right wrist", "left wrist", "camera path", "camera",
                                          "hands at first frame", "hands at last frame"]
    right = np.asarray(fig.data[0].x, float)
    assert np.isnan(right[3:6]).all() and np.isfinite(right[:3]).all()
    assert len(finite_points(fig.data[3])) == 3 * 16  # 3 frustums of 16 finite points
    cmp = viz.prompt_comparison_figure(w, {"pour": w["future_joints"] + 0.02, "wipe": w["future_joints"] - 0.02})
    assert [t.name for t in cmp.data][3:] == ["pour wrists", "pour (final)", "wipe wrists", "wipe (final)"]
    assert cmp.data[3].line.color != cmp.data[5].line.color
    snap = viz.skeleton_snapshot_figure({"observed": (joints[0], valid[0]), "forecast": (joints[-1], None)})
    out = viz.save_figure(snap, tmp_path / "snap.png")
    assert (tmp_path / "snap.png").stat().st_size > 1000 and out.endswith("snap.png")
    viz.save_figure(fig, tmp_path / "traj.html")
    assert "right wrist" in (tmp_path / "traj.html").read_text()
    plt.close("all")


def test_egomotion_histogram_and_training_curve():
    scores = np.concatenate([np.linspace(0.0, 0.9, 90), np.linspace(1.0, 2.0, 10), [np.nan]])
    fig = viz.egomotion_histogram_figure(scores, fraction=0.1, bins=10)
    ax = fig.axes[0]
    labels = [h.get_label() for h in ax.get_legend().legend_handles]
    assert labels == ["rest (91)", "top 10% (10)"]  # the NaN window is never in the top
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == 100
    assert ax.lines[0].get_xdata()[0] == pytest.approx(1.0)
    hist = {"step": np.array([5, 10, 15, 20.0]), "loss": np.array([1.0, 0.8, np.nan, 0.5]),
            "val_loss": np.array([np.nan, 0.9, np.nan, 0.6])}
    fig = viz.training_curve_figure(hist)
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["loss", "val_loss"]
    assert lines[0].get_xdata().tolist() == [5, 10, 20] and lines[1].get_xdata().tolist() == [10, 20]
    with pytest.raises(ValueError, match="step"):
        viz.training_curve_figure({"loss": [1.0]})
    plt.close("all")
