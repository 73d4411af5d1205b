"""Rigid transforms and the canonical frame of a window (docs/conventions.md, "Coordinate frames").

Every function works on numpy arrays and on torch tensors (the result has the input's type), with any
leading batch dimensions. Extrinsics map world -> camera: ``X_c = R X_w + t``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

Array = Any  # np.ndarray | torch.Tensor


def _xp(x: Array):
    return torch if isinstance(x, torch.Tensor) else np


def _as_array(x: Array, like: Array | None = None) -> Array:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(like, torch.Tensor):
        return torch.as_tensor(np.asarray(x), dtype=like.dtype, device=like.device)
    return np.asarray(x, dtype=np.float64 if like is None else np.result_type(like, np.float32))


def to_homogeneous(T: Array) -> Array:
    """(..., 3, 4) or (..., 4, 4) -> (..., 4, 4)."""
    if T.shape[-2:] == (4, 4):
        return T
    if T.shape[-2:] != (3, 4):
        raise ValueError(f"transform: expected shape (..., 3, 4) or (..., 4, 4), got {tuple(T.shape)}")
    xp = _xp(T)
    bottom = xp.zeros(T.shape[:-2] + (1, 4), dtype=T.dtype) if xp is np else torch.zeros(
        T.shape[:-2] + (1, 4), dtype=T.dtype, device=T.device)
    bottom[..., 0, 3] = 1
    return xp.concatenate([T, bottom], axis=-2) if xp is np else torch.cat([T, bottom], dim=-2)


def invert_rigid(T: Array) -> Array:
    """Inverse of a rigid transform (..., 3|4, 4) -> (..., 4, 4), without a general matrix inverse."""
    T = to_homogeneous(T)
    R, t = T[..., :3, :3], T[..., :3, 3:]
    Rt = R.swapaxes(-1, -2) if isinstance(R, np.ndarray) else R.transpose(-1, -2)
    out = T.copy() if isinstance(T, np.ndarray) else T.clone()
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -(Rt @ t)
    return out


def transform_points(T: Array, X: Array) -> Array:
    """Apply rigid transforms T (..., 3|4, 4) to points X (..., P, 3) -> (..., P, 3).

    T's leading dimensions broadcast against X's leading dimensions (all but the last two).
    """
    if X.shape[-1] != 3:
        raise ValueError(f"X: expected points of shape (..., 3), got {tuple(X.shape)}")
    if T.shape[-2:] not in ((3, 4), (4, 4)):
        raise ValueError(f"T: expected shape (..., 3, 4) or (..., 4, 4), got {tuple(T.shape)}")
    # Mixed inputs follow the points: T is converted to X's array type and dtype.
    if isinstance(X, torch.Tensor):
        T = torch.as_tensor(T, dtype=X.dtype, device=X.device)
    else:
        X = np.asarray(X)
        T = T.detach().cpu().numpy() if isinstance(T, torch.Tensor) else np.asarray(T)
        dtype = np.result_type(X.dtype, T.dtype, np.float32)
        X, T = X.astype(dtype, copy=False), T.astype(dtype, copy=False)
    R, t = T[..., :3, :3], T[..., :3, 3]
    Rt = R.swapaxes(-1, -2) if isinstance(R, np.ndarray) else R.transpose(-1, -2)
    return X @ Rt + t[..., None, :]


def camera_center(extrinsics: Array) -> Array:
    """World position of the camera centre, c = -R^T t: (..., 3|4, 4) -> (..., 3)."""
    R, t = extrinsics[..., :3, :3], extrinsics[..., :3, 3]
    Rt = R.swapaxes(-1, -2) if isinstance(R, np.ndarray) else R.transpose(-1, -2)
    return -(Rt @ t[..., None])[..., 0]


def camera_forward(extrinsics: Array) -> Array:
    """World direction of the optical axis, f = R^T [0, 0, 1] = third row of R: (...,3|4,4) -> (...,3)."""
    return extrinsics[..., 2, :3]


def rotation_about_axis(axis: Array, angle: Array) -> Array:
    """Rodrigues rotation matrices about a unit ``axis`` (3,) by ``angle`` (...) radians -> (..., 3, 3)."""
    if isinstance(axis, torch.Tensor) and not isinstance(angle, torch.Tensor):
        angle = torch.as_tensor(np.asarray(angle), dtype=axis.dtype, device=axis.device)
    xp = _xp(angle)
    angle = angle if isinstance(angle, torch.Tensor) else np.asarray(angle, dtype=np.float64)
    axis = axis.to(angle.dtype) if isinstance(axis, torch.Tensor) else _as_array(axis, angle)
    axis = axis / (axis**2).sum() ** 0.5
    x, y, z = axis[0], axis[1], axis[2]
    zero = axis[0] * 0
    K = xp.stack([xp.stack([zero, -z, y]), xp.stack([z, zero, -x]), xp.stack([-y, x, zero])])
    s, c = xp.sin(angle)[..., None, None], xp.cos(angle)[..., None, None]
    eye = xp.eye(3, dtype=K.dtype) if xp is np else torch.eye(3, dtype=K.dtype, device=K.device)
    return eye + s * K + (1 - c) * (K @ K)


def _vector3(v: Array, name: str) -> np.ndarray:
    """A non-zero finite 3-vector as float64 numpy (torch tensors are moved to the CPU)."""
    v = np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64)
    if v.shape != (3,) or not np.isfinite(v).all() or np.linalg.norm(v) < 1e-12:
        raise ValueError(f"{name}: expected a non-zero finite 3-vector, got {v!r}")
    return v


def _heading_basis(up: Array) -> tuple[Array, Array]:
    """Two unit vectors (e1, e2) spanning the plane orthogonal to ``up``, with (e1, e2, up) right-handed.

    For up = +z this is (+x, +y), so the yaw below is exactly the atan2(f_y, f_x) of docs/conventions.md.
    """
    up = np.asarray(up, dtype=np.float64)
    up = up / np.linalg.norm(up)
    ref = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = ref - up * (ref @ up)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    return e1, e2


def canonical_transform(extrinsics: Array, up: Array = (0.0, 0.0, 1.0)) -> Array:
    """World -> canonical transform from a camera's world -> camera extrinsics.

    extrinsics: (..., 3, 4) or (..., 4, 4). Returns (..., 4, 4) mapping world points to the canonical
    frame: origin at the camera centre, the horizontal part of the viewing direction rotated onto the
    first heading axis (+x for up = +z), the up axis unchanged. ``X_can = R_c (X_world - c)``.
    For another up axis the first heading axis is world +x projected onto the plane orthogonal to up
    (world +y when up is within ~25 degrees of +-x). A camera looking straight along up has no heading:
    yaw 0 (R_c = identity).
    """
    if extrinsics.shape[-2:] not in ((3, 4), (4, 4)):
        raise ValueError(f"extrinsics: expected shape (..., 3, 4) or (..., 4, 4), got {tuple(extrinsics.shape)}")
    is_torch = isinstance(extrinsics, torch.Tensor)
    # numpy maths runs in float64 and is returned in the input's float dtype (float64 for non-floats).
    in_dtype = np.asarray(extrinsics).dtype if not is_torch else None
    out_dtype = in_dtype if in_dtype is not None and np.issubdtype(in_dtype, np.floating) else np.float64
    E = extrinsics if is_torch else np.asarray(extrinsics, dtype=np.float64)
    xp = torch if is_torch else np
    up = _vector3(up, "up")
    e1, e2 = _heading_basis(up)
    c = camera_center(E)
    f = camera_forward(E)
    e1_, e2_ = _as_array(e1, E), _as_array(e2, E)
    yaw = xp.arctan2((f * e2_).sum(-1), (f * e1_).sum(-1))
    up_ = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    # A rotation about `up` keeps gravity where it is and turns the horizontal heading onto e1.
    R_c = rotation_about_axis(_as_array(up_, E), -yaw)
    out = xp.zeros(E.shape[:-2] + (4, 4), dtype=E.dtype) if not is_torch else torch.zeros(
        E.shape[:-2] + (4, 4), dtype=E.dtype, device=E.device)
    out[..., :3, :3] = R_c
    out[..., :3, 3] = -(R_c @ c[..., None])[..., 0]
    out[..., 3, 3] = 1
    return out if is_torch else out.astype(out_dtype, copy=False)


def rotation_angle(R: Array) -> Array:
    """Angle (radians) of rotation matrices (..., 3, 3)."""
    xp = _xp(R)
    tr = R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2]
    return xp.arccos(xp.clip((tr - 1) / 2, -1.0, 1.0))


def look_at_extrinsics(eye: Array, target: Array, up: Array = (0.0, 0.0, 1.0)) -> np.ndarray:
    """World -> camera extrinsics (3, 4) of a pinhole camera at ``eye`` looking at ``target``.

    Camera axes follow the OpenCV convention: +z forward, +x right, +y down in the image.
    """
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at_extrinsics: viewing direction is parallel to up")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return np.concatenate([R, -(R @ eye)[:, None]], axis=1)
