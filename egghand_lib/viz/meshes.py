"""trimesh: hand meshes (an icosphere per joint, a capsule per bone) and binary glTF export.

trimesh is imported inside the functions, so importing ``egghand_lib.viz`` does not load it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from egghand_lib.io import atomic_path
from egghand_lib.skeleton import BONES
from egghand_lib.viz.common import COLORS, as_numpy, check_joints, rgba


def hand_mesh(joints: Any, valid: Any | None = None, color: str | Sequence[int] = COLORS["forecast"],
              joint_radius: float = 0.008, bone_radius: float = 0.005, sphere_subdivisions: int = 1,
              capsule_count: tuple[int, int] = (8, 8)):
    """A trimesh.Trimesh of one two-hand skeleton: an icosphere per valid joint, a capsule per valid bone.

    joints (42, 3) metres, valid (42,). Missing joints and bones touching them are left out. With the
    defaults a sphere has 42 vertices and a capsule 66, so the mesh has 42 * joints + 66 * bones vertices
    (see ``hand_mesh_vertex_count``). Vertex colours are ``color``.
    """
    import trimesh  # heavy optional back-end, imported on use

    joints, valid = check_joints("joints", joints, valid)
    if joints.ndim != 2:
        raise ValueError(f"joints: expected one skeleton (42, 3), got {joints.shape}")
    parts = []
    for j in np.flatnonzero(valid):
        s = trimesh.creation.icosphere(subdivisions=sphere_subdivisions, radius=joint_radius)
        s.apply_translation(joints[j])
        parts.append(s)
    for p, c in BONES:
        if not (valid[p] and valid[c]):
            continue
        d = joints[c] - joints[p]
        length = float(np.linalg.norm(d))
        if length < 1e-9:
            continue  # a zero-length bone has no direction; its joints' spheres already show it
        # trimesh's capsule runs along +z, centred at the origin; rotate it onto the bone, move to its middle.
        cap = trimesh.creation.capsule(height=length, radius=bone_radius, count=list(capsule_count))
        T = trimesh.geometry.align_vectors([0, 0, 1], d / length)
        T[:3, 3] = (joints[p] + joints[c]) / 2
        cap.apply_transform(T)
        parts.append(cap)
    if not parts:
        return trimesh.Trimesh()
    mesh = trimesh.util.concatenate(parts)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.tile(rgba(color), (len(mesh.vertices), 1)))
    return mesh


def hand_mesh_vertex_count(valid: Any, sphere_subdivisions: int = 1, capsule_count: tuple[int, int] = (8, 8),
                           joints: Any | None = None) -> int:
    """Vertices of ``hand_mesh`` for a validity mask (42,), from the primitives' own vertex counts."""
    import trimesh  # heavy optional back-end, imported on use

    valid = as_numpy(valid).astype(bool)
    nv = len(trimesh.creation.icosphere(subdivisions=sphere_subdivisions).vertices)
    nc = len(trimesh.creation.capsule(height=1.0, radius=0.1, count=list(capsule_count)).vertices)
    bones = [(p, c) for p, c in BONES if valid[p] and valid[c]]
    if joints is not None:
        J = as_numpy(joints)
        bones = [(p, c) for p, c in bones if np.linalg.norm(J[c] - J[p]) >= 1e-9]
    return int(valid.sum()) * nv + len(bones) * nc


def export_glb(meshes: Mapping[str, Any] | Any, path: str | os.PathLike) -> str:
    """Write one mesh or a {name: mesh} dict as a binary glTF scene (atomically). Returns the path."""
    import trimesh  # heavy optional back-end, imported on use

    scene = trimesh.Scene()
    items = meshes.items() if isinstance(meshes, Mapping) else [("hands", meshes)]
    for name, m in items:
        if len(m.vertices):
            scene.add_geometry(m, geom_name=name, node_name=name)
    if not scene.geometry:
        raise ValueError(f"export_glb: nothing to write to {path}: every mesh is empty")
    data = scene.export(file_type="glb")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return str(path)

