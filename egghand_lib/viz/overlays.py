"""Joints drawn on the egocentric frames: pinhole projection, a numpy rasteriser and matplotlib overlays.

Extrinsics map source -> camera (``X_c = R X_w + t``, OpenCV axes: +z forward, +y down in the image);
intrinsics are the 3x3 pinhole matrix of the stored frames. matplotlib is imported inside the figure
functions, so importing ``egghand_lib.viz`` does not load it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from egghand_lib.batch import OBS_OFFSETS, VIDEO_OFFSETS
from egghand_lib.geometry import transform_points
from egghand_lib.skeleton import BONES
from egghand_lib.viz.common import COLORS, as_numpy, check_joints, method_color, rgba


def project_points(points: Any, extrinsics: Any, intrinsics: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection of points (..., P, 3) with extrinsics (..., 3|4, 4) source -> camera, K (3, 3).

    Returns (uv (..., P, 2) pixel coordinates, depth (..., P) along the optical axis). Pixel (0, 0) is the
    centre of the top-left pixel's corner convention of K (OpenCV): u = fx x / z + cx, v = fy y / z + cy.
    Points at depth <= 0 get NaN pixels.
    """
    X = as_numpy(points).astype(np.float64)
    E = as_numpy(extrinsics).astype(np.float64)
    K = as_numpy(intrinsics).astype(np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"intrinsics: expected (3, 3), got {K.shape}")
    Xc = transform_points(E, X)
    z = Xc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uvw = Xc @ K.T
        uv = uvw[..., :2] / uvw[..., 2:3]
    uv[z <= 0] = np.nan
    return uv, z


def visible_in_image(uv: np.ndarray, depth: np.ndarray, image_size: tuple[int, int],
                     valid: Any | None = None) -> np.ndarray:
    """Mask (..., P) of points in front of the camera, inside a (W, H) image, and valid."""
    w, h = image_size
    inside = (depth > 0) & np.isfinite(uv).all(-1) & (uv[..., 0] >= 0) & (uv[..., 0] < w)
    inside &= (uv[..., 1] >= 0) & (uv[..., 1] < h)
    return inside if valid is None else inside & as_numpy(valid).astype(bool)


def draw_skeleton(image: Any, uv: Any, mask: Any, color: str | Sequence[int] = COLORS["forecast"],
                  radius: int = 2, draw_bones: bool = True) -> np.ndarray:
    """Rasterise one skeleton onto a copy of an RGB image (H, W, 3) uint8 with numpy only.

    uv (42, 2) pixels, mask (42,) which joints to draw (e.g. ``visible_in_image``). Joints become discs of
    ``radius`` pixels; bones with both joints drawn become 1-pixel lines. Nothing else is touched.
    """
    img = np.array(as_numpy(image), dtype=np.uint8, copy=True)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image: expected (H, W, 3), got {img.shape}")
    uv, mask = as_numpy(uv).astype(np.float64), as_numpy(mask).astype(bool)
    h, w = img.shape[:2]
    rgb = rgba(color)[:3]
    mask = mask & np.isfinite(uv).all(-1)
    if draw_bones:
        for p, c in BONES:
            if mask[p] and mask[c]:
                n = int(np.ceil(np.abs(uv[c] - uv[p]).max())) + 1
                s = np.linspace(0, 1, n)[:, None]
                pts = np.rint(uv[p] + s * (uv[c] - uv[p])).astype(int)
                ok = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
                img[pts[ok, 1], pts[ok, 0]] = rgb
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disc = (xx**2 + yy**2) <= radius**2
    dx, dy = xx[disc], yy[disc]
    for j in np.flatnonzero(mask):
        cx, cy = np.rint(uv[j]).astype(int)
        px, py = cx + dx, cy + dy
        ok = (px >= 0) & (px < w) & (py >= 0) & (py < h)
        img[py[ok], px[ok]] = rgb
    return img


def _hwc(frame: Any) -> np.ndarray:
    f = as_numpy(frame)
    if f.ndim == 3 and f.shape[0] == 3 and f.shape[2] != 3:
        f = f.transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
    return f


def overlay_figure(frames: Any, joint_sets: Mapping[str, tuple[Any, Any]], extrinsics: Any, intrinsics: Any,
                   titles: Sequence[str] | None = None, joint_size: float = 12.0):
    """Matplotlib figure: each frame with every joint set projected onto it.

    frames (N, H, W, 3) or (N, 3, H, W) uint8; joint_sets {name: (joints (N, 42, 3), valid (N, 42))} in
    the extrinsics' source frame; extrinsics (N, 3, 4); intrinsics (3, 3) of the frames. Joints that
    are invalid, behind the camera or outside the image are not drawn. Each axes gets one scatter per
    joint set (label = name, colour ``method_color(name)``) and one line per drawn bone.
    """
    import matplotlib.pyplot as plt  # heavy optional back-end, imported on use

    frames_np = [_hwc(f) for f in frames]
    E = as_numpy(extrinsics)
    n = len(frames_np)
    if len(E) != n:
        raise ValueError(f"extrinsics: expected {n} cameras for {n} frames, got {len(E)}")
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    for i, (ax, img) in enumerate(zip(axes[0], frames_np, strict=True)):
        h, w = img.shape[:2]
        ax.imshow(img)
        for k, (name, (joints, valid)) in enumerate(joint_sets.items()):
            J, V = check_joints(name, joints, valid)
            uv, z = project_points(J[i], E[i], intrinsics)
            m = visible_in_image(uv, z, (w, h), V[i])
            color = method_color(name, k)
            for p, c in BONES:
                if m[p] and m[c]:
                    ax.plot(uv[[p, c], 0], uv[[p, c], 1], color=color, linewidth=1.2)
            ax.scatter(uv[m, 0], uv[m, 1], s=joint_size, color=color, label=name, zorder=3)
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    axes[0, 0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    return fig


def window_overlay_figure(window: Mapping[str, Any], intrinsics: Any, forecast: Any | None = None,
                          show_future_on_last: bool = True):
    """``overlay_figure`` of a window's 4 video frames (offsets -18, -12, -6, 0) with its observed joints.

    With ``show_future_on_last`` the final frame also carries the ground truth and the forecast (if
    given) of the last target frame seen from the current camera: where the hands will be, drawn on
    where they are now.
    """
    past, pv = as_numpy(window["past_joints"]), as_numpy(window["past_valid"])
    idx = [OBS_OFFSETS.index(o) for o in VIDEO_OFFSETS]
    sets: dict[str, tuple[Any, Any]] = {"observed": (past[idx], pv[idx])}
    if show_future_on_last:
        last = np.zeros_like(past[idx])
        last_valid = np.zeros_like(pv[idx])
        last[-1], last_valid[-1] = as_numpy(window["future_joints"])[-1], as_numpy(window["future_valid"])[-1]
        sets["ground truth"] = (last, last_valid)
        if forecast is not None:
            f = np.zeros_like(last)
            f[-1] = as_numpy(forecast)[-1]
            fv = np.zeros_like(last_valid)
            fv[-1] = True
            sets["forecast"] = (f, fv)
    titles = [f"t{o:+d}" + (" (+ final target)" if o == 0 and show_future_on_last else "") for o in VIDEO_OFFSETS]
    cameras = as_numpy(window["past_extrinsics"])[idx]
    return overlay_figure(as_numpy(window["frames"]), sets, cameras, intrinsics, titles)

