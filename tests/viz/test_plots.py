"""egghand_lib.viz.plots: result plots and tables show the given numbers; figures are saved atomically."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from egghand_lib import viz
from tests.fixtures.hand_scenes import window


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


def test_skeleton_snapshot_saved_as_png(tmp_path):
    w = window()
    joints = np.concatenate([w["past_joints"].numpy(), w["future_joints"].numpy()])
    valid = np.ones(joints.shape[:2], bool)
    snap = viz.skeleton_snapshot_figure({"observed": (joints[0], valid[0]), "forecast": (joints[-1], None)})
    out = viz.save_figure(snap, tmp_path / "snap.png")
    assert (tmp_path / "snap.png").stat().st_size > 1000 and out.endswith("snap.png")
    plt.close("all")


def test_side_by_side_panels_share_their_axes():
    curves = {"CVM": np.linspace(0.1, 0.5, 10), "LastPose": np.linspace(0.05, 0.2, 10)}
    fig = viz.horizon_error_panels({"ADE (m)": curves, "MPJPE (m)": {k: v / 4 for k, v in curves.items()}})
    assert len(fig.axes) == 2 and fig.axes[0].get_shared_x_axes().joined(fig.axes[0], fig.axes[1])
    assert [ax.get_ylabel() for ax in fig.axes] == ["ADE (m)", "MPJPE (m)"]
    assert fig.axes[1].get_lines()[1].get_color() == viz.METHOD_COLORS["LastPose"]
    assert np.allclose(fig.axes[1].get_lines()[0].get_ydata(), curves["CVM"] / 4)
    plt.close(fig)

    calm, moving = window(), window(seed=1)
    E = moving["future_extrinsics"].clone()
    E[:, :, 3] += torch.linspace(0, 0.2, 10)[:, None]  # the head moves during the target second
    moving["future_extrinsics"] = E
    fig = viz.camera_motion_figure({"calm": calm, "moving": moving})
    heading, pitch, moved, step = fig.axes
    assert heading.get_shared_x_axes().joined(heading, step)
    assert np.allclose(heading.get_lines()[0].get_ydata(), 0, atol=1e-6)  # the canonical frame's heading is 0
    assert np.allclose(moved.get_lines()[0].get_ydata(), 0, atol=1e-4)  # the still camera never moves
    assert moved.get_lines()[1].get_ydata()[-1] == pytest.approx(100 * 0.2 * np.sqrt(3), rel=1e-3)  # t += 0.2 m
    steps = [ln.get_ydata() for ln in step.get_lines() if len(ln.get_ydata()) == 29]  # not the dashed means
    assert len(steps[0]) == 29 and np.allclose(steps[0], 0, atol=1e-6) and steps[1][-9:].min() > 0.01
    plt.close(fig)
    fig = viz.topdown_scatter_figure({"a": np.zeros((3, 3)), "b": np.ones((3, 3))}, share=True)
    assert fig.axes[0].get_shared_x_axes().joined(fig.axes[0], fig.axes[1])
    plt.close(fig)

    w = window()
    hyp = np.stack([w["future_joints"].numpy() + 0.01 * k for k in range(4)])
    fig = viz.hypotheses_figure(w, w["future_joints"], hyp)
    right, left, ends = fig.axes
    labels = [ln.get_label() for ln in right.get_lines() if not ln.get_label().startswith("_")]
    assert labels == ["observed", "ground truth", "4 hypotheses", "forecast"]
    assert np.allclose(right.collections[0].get_offsets(), hyp[:, -1, 0, :2])  # the 4 final right wrists
    assert np.allclose(left.collections[0].get_offsets(), hyp[:, -1, 21, :2])
    # The endpoint panel: millimetres from the hypotheses' mean (they sit 10 mm apart along x and y).
    rel = ends.collections[0].get_offsets()
    assert np.allclose(rel, 1000 * (hyp[:, -1, 0, :2] - hyp[:, -1, 0, :2].mean(0)), atol=1e-6)
    assert np.allclose(np.diff(rel[:, 0]), 10.0, atol=1e-4)
    plt.close(fig)


def test_change_bars_share_the_y_axis():
    fig = viz.change_bars_figure({"paper": {"noisy vision": 5.9, "dummy language": 2.6},
                                  "ours": {"noisy vision": -1.0}})
    paper, ours = fig.axes
    assert paper.get_shared_y_axes().joined(paper, ours)
    assert [b.get_height() for b in paper.patches] == [5.9, 2.6] and ours.patches[0].get_height() == -1.0
    assert [t.get_text() for t in ours.texts] == ["-1.0%"]
    plt.close(fig)
