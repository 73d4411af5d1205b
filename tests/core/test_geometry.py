"""Geometry: rigid transforms and the canonical frame (docs/conventions.md, "Coordinate frames"), numpy and torch."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from egghand_lib import geometry as geo
from tests.fixtures.random_arrays import FAST, random_rotation

UPS = [(0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (0.3, -0.2, 0.9), (-1.0, 0.1, 0.2)]


def random_extrinsics(rng, n=None):
    """World -> camera [R | t] with a random rotation and translation: (3, 4) or (n, 3, 4)."""
    if n is not None:
        return np.stack([random_extrinsics(rng) for _ in range(n)])
    return np.concatenate([random_rotation(rng), rng.normal(scale=2.0, size=(3, 1))], axis=1)


def check_canonical(E, T, up):
    """The three canonical-frame properties, checked in float64 numpy."""
    E, T = np.asarray(E, np.float64), np.asarray(T, np.float64)
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    R_c = T[:3, :3]
    assert np.allclose(R_c @ R_c.T, np.eye(3), atol=1e-5) and np.isclose(np.linalg.det(R_c), 1, atol=1e-5)
    # up is kept
    assert np.allclose(R_c @ up, up, atol=1e-5)
    # the camera centre goes to the origin
    assert np.allclose(geo.transform_points(T, geo.camera_center(E)[None]), 0, atol=1e-5)
    # the horizontal part of the viewing direction lands on the first heading axis (+x for up = +z):
    # the projection of world +x (world +y when up is nearly +-x) onto the plane orthogonal to up.
    ref = np.array([1.0, 0, 0]) if abs(up[0]) < 0.9 else np.array([0, 1.0, 0])
    e1 = ref - up * (ref @ up)
    e1 /= np.linalg.norm(e1)
    f = R_c @ E[2, :3]  # optical axis in the canonical frame
    f_h = f - up * (f @ up)
    if np.linalg.norm(f_h) > 1e-3:
        assert np.allclose(f_h / np.linalg.norm(f_h), e1, atol=1e-4)


@FAST
@given(seed=st.integers(0, 2**32 - 1), up_index=st.integers(0, len(UPS) - 1))
def test_canonical_transform_properties_numpy_and_torch(seed, up_index):
    rng = np.random.default_rng(seed)
    up = UPS[up_index]
    E = random_extrinsics(rng)
    check_canonical(E, geo.canonical_transform(E, up=up), up)
    T_t = geo.canonical_transform(torch.tensor(E), up=up)
    assert isinstance(T_t, torch.Tensor) and T_t.dtype == torch.float64
    check_canonical(E, T_t.numpy(), up)
    T_32 = geo.canonical_transform(torch.tensor(E, dtype=torch.float32), up=torch.tensor(up))
    assert T_32.dtype == torch.float32
    assert np.allclose(T_32.numpy(), T_t.numpy(), atol=1e-5)


def test_canonical_transform_z_up_is_spec_formula():
    # A camera at (1, 2, 1.5) looking at (3, -1, 0.5): yaw = atan2(-3, 2), X_can = Rz(-yaw) (X - c).
    E = geo.look_at_extrinsics([1, 2, 1.5], [3, -1, 0.5])
    yaw = np.arctan2(-3.0, 2.0)
    Rz = np.array([[np.cos(-yaw), -np.sin(-yaw), 0], [np.sin(-yaw), np.cos(-yaw), 0], [0, 0, 1]])
    X = np.array([[0.0, 0, 0], [3, -1, 0.5], [1, 2, 2.5]])
    expected = (X - [1, 2, 1.5]) @ Rz.T
    assert np.allclose(geo.transform_points(geo.canonical_transform(E), X), expected)
    # the look-at target is straight ahead: positive x, no y
    target = geo.transform_points(geo.canonical_transform(E), X[1:2])[0]
    assert target[0] > 0 and abs(target[1]) < 1e-12


def test_canonical_transform_batched_and_homogeneous_input():
    rng = np.random.default_rng(0)
    E = random_extrinsics(rng, 6).reshape(2, 3, 3, 4)
    T = geo.canonical_transform(E)
    assert T.shape == (2, 3, 4, 4)
    assert np.allclose(T[1, 2], geo.canonical_transform(E[1, 2]))
    assert np.allclose(geo.canonical_transform(geo.to_homogeneous(E)), T)
    assert np.allclose(T[..., 3, :], [0, 0, 0, 1])
    # numpy float32 in -> float32 out
    assert geo.canonical_transform(E.astype(np.float32)).dtype == np.float32


def test_camera_center_and_forward():
    rng = np.random.default_rng(1)
    E = random_extrinsics(rng, 4)
    c = geo.camera_center(E)
    assert np.allclose(geo.transform_points(E, c[:, None])[:, 0], 0)
    # a point one metre along the optical axis sits at camera coordinates (0, 0, 1)
    ahead = c + geo.camera_forward(E)
    assert np.allclose(geo.transform_points(E, ahead[:, None])[:, 0], [0, 0, 1])
    assert np.allclose(geo.camera_center(torch.tensor(E)).numpy(), c)


def test_look_at_extrinsics_opencv_axes():
    E = geo.look_at_extrinsics([0, 0, 1], [2, 0, 1])
    assert np.allclose(geo.transform_points(E, np.array([[2.0, 0, 1]])), [[0, 0, 2]])
    assert np.allclose(geo.transform_points(E, np.array([[0.0, 0, 2]])), [[0, -1, 0]])  # up is image -y
    assert np.allclose(geo.transform_points(E, np.array([[0.0, -1, 1]])), [[1, 0, 0]])  # right is image +x
    with pytest.raises(ValueError, match="parallel to up"):
        geo.look_at_extrinsics([0, 0, 0], [0, 0, 1])


@FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_invert_rigid_and_transform_points_roundtrip(seed):
    rng = np.random.default_rng(seed)
    E = random_extrinsics(rng, 3)
    X = rng.normal(size=(3, 5, 3))
    inv = geo.invert_rigid(E)
    assert np.allclose(inv @ geo.to_homogeneous(E), np.eye(4), atol=1e-9)
    assert np.allclose(geo.transform_points(inv, geo.transform_points(E, X)), X, atol=1e-9)
    Et, Xt = torch.tensor(E), torch.tensor(X)
    assert np.allclose(geo.invert_rigid(Et).numpy(), inv)
    assert np.allclose(geo.transform_points(Et, Xt).numpy(), geo.transform_points(E, X))
    # mixed inputs follow the points' type and dtype
    mixed = geo.transform_points(E, Xt.float())
    assert isinstance(mixed, torch.Tensor) and mixed.dtype == torch.float32
    assert np.allclose(mixed.numpy(), geo.transform_points(E, X), atol=1e-5)


def test_rotation_about_axis_and_angle():
    R = geo.rotation_about_axis([0, 0, 2.0], np.pi / 2)  # axis need not be unit
    assert np.allclose(R @ [1, 0, 0], [0, 1, 0])
    angles = np.array([0.1, 1.0, 3.0])
    Rs = geo.rotation_about_axis([1.0, 2.0, -1.0], angles)
    assert Rs.shape == (3, 3, 3)
    assert np.allclose(geo.rotation_angle(Rs), angles)
    Rt = geo.rotation_about_axis(torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64), torch.tensor(angles))
    assert np.allclose(Rt.numpy(), Rs)
    assert np.allclose(geo.rotation_angle(Rt).numpy(), angles)


def test_bad_inputs():
    with pytest.raises(ValueError, match="extrinsics"):
        geo.canonical_transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="up"):
        geo.canonical_transform(geo.look_at_extrinsics([0, 0, 0], [1, 0, 0]), up=(0, 0, 0))
    with pytest.raises(ValueError, match="X"):
        geo.transform_points(np.eye(4), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="T"):
        geo.transform_points(np.eye(3), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="transform"):
        geo.to_homogeneous(np.zeros((2, 3)))
