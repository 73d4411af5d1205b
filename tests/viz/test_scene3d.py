"""egghand_lib.viz.scene3d: plotly figures carry the expected traces, frames, controls and frames of reference."""

from __future__ import annotations

import numpy as np
import pytest

from egghand_lib import viz
from egghand_lib.geometry import camera_center, invert_rigid, transform_points
from egghand_lib.skeleton import WRIST_INDICES
from tests.fixtures.hand_scenes import finite_points, window


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
    # Slider with one step per frame, opening on the last target frame (forecast and ground truth both drawn
    # there, and the figure's own traces are that frame's), and a Play button.
    assert len(fig.layout.sliders[0].steps) == 30 and fig.layout.sliders[0].active == 29
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["Play", "Pause"]
    assert len(finite_points(fig.data[1])) > 0 and len(finite_points(fig.data[2])) > 0
    assert len(finite_points(fig.data[0])) == 0  # nothing observed at t+10
    assert np.allclose(finite_points(fig.data[2]).min(0), pred[9].min(0), atol=1e-6)


def test_forecast_figure_initial_frame():
    w = window()
    args = (w["past_joints"], w["past_valid"], w["future_joints"], w["future_valid"])
    at_t = viz.forecast_figure(*args, initial_frame=0)
    assert at_t.layout.sliders[0].active == 19
    assert len(finite_points(at_t.data[0])) > 0 and len(finite_points(at_t.data[1])) == 0
    assert viz.forecast_figure(*args, initial_frame="t-5").layout.sliders[0].active == 14
    code = viz.forecast_figure(*args, protocol="egghand-code")  # targets 0..9: opens on t+9
    assert code.layout.sliders[0].steps[code.layout.sliders[0].active].label == "t+9"
    for bad in (11, "t+11", "later"):
        with pytest.raises(ValueError, match="initial_frame"):
            viz.forecast_figure(*args, initial_frame=bad)


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
    box = {"position": np.array([0.1, 0.2, 0.3]), "rgb": np.array([1.0, 0.0, 0.0])}
    cmp = viz.prompt_comparison_figure(w, {"pour": w["future_joints"]}, objects={"red box": box})
    assert cmp.data[-1].name == "red box" and cmp.data[-1].marker.color == "rgb(255,0,0)"
    assert (cmp.data[-1].x[0], cmp.data[-1].y[0], cmp.data[-1].z[0]) == (0.1, 0.2, 0.3)
    viz.save_figure(fig, tmp_path / "traj.html")
    assert "right wrist" in (tmp_path / "traj.html").read_text()
