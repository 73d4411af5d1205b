"""egghand_lib.viz.meshes: hand meshes have the predicted vertices and survive a GLB round trip."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from egghand_lib import viz
from egghand_lib.skeleton import BONES
from tests.fixtures.hand_scenes import two_hands


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


def test_mesh_figure_draws_each_mesh_as_a_lit_surface():
    J = two_hands()
    gt = viz.hand_mesh(J, np.ones(42, bool), color=viz.COLORS["ground truth"])
    fc = viz.hand_mesh(J + 0.05, np.ones(42, bool), color=viz.COLORS["forecast"])
    fig = viz.mesh_figure({"ground truth": gt, "forecast": fc, "nothing": viz.hand_mesh(J, np.zeros(42, bool))})
    assert [t.type for t in fig.data] == ["mesh3d", "mesh3d"]  # the empty mesh is left out
    assert [t.name for t in fig.data] == ["ground truth", "forecast"]
    assert len(fig.data[0].x) == len(gt.vertices) and len(fig.data[1].i) == len(fc.faces)
    assert np.allclose(np.stack([fig.data[1].x, fig.data[1].y, fig.data[1].z], 1), fc.vertices)
    assert fig.data[0].color == "rgb(44,160,44)"  # the ground-truth green of viz.COLORS
    with pytest.raises(ValueError, match="empty"):
        viz.mesh_figure({"nothing": viz.hand_mesh(J, np.zeros(42, bool))})
