"""Rendering EgoSynth: a small numpy ray caster, the primitives of a frame, and the per-joint labels.

The ray caster draws shaded spheres, capsules, capped cylinders and boxes with a z-buffer, vectorised
over pixels and primitives. Rays are cast with an unnormalised direction ``d = K^-1 [u, v, 1]`` (so
d_z = 1): the ray parameter ``t`` of a hit IS its camera depth z, which is what the z-buffer and the
occlusion tests compare. Primitives are grouped by an integer id (a hand, an object, the lamp, the
table); each group is intersected only inside the image rectangle its bounding box projects to, which
keeps a 224x224 frame of two hands and a few objects at a few milliseconds. Camera convention: OpenCV
(+x right, +y down, +z forward); extrinsics map world -> camera, ``X_c = R X_w + t``.

``render_take`` renders every grid frame of a simulated take and derives what the camera sees: joints in
view, visible (their own hand is the nearest surface) or hidden behind something else, and the pixel
count of every object and of the lamp. ``label_validity`` turns that into EgoExo4D-style missing labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from egghand_lib import skeleton
from egghand_lib.data.egosynth.config import SynthConfig
from egghand_lib.data.egosynth.hand_model import joint_radii
from egghand_lib.data.egosynth.scene import LAMP_PANEL, LAMP_POST_HEIGHT, LAMP_POST_RGB, lamp_colour
from egghand_lib.data.egosynth.simulation import TakeSim
from egghand_lib.data.egosynth.tasks import HANDS, TakePlan

NEAR = 0.02  # metres: nothing closer than this to the camera is drawn
PARTS = 8  # a group (id) may be split into parts that are culled separately (a forearm near the camera)
BACKGROUND_ID = 0
FLOOR_ID = 1
TABLE_ID = 2
HAND_ID = {"right": 3, "left": 4}
LAMP_ID = 5
OBJECT_ID0 = 10  # object k has id OBJECT_ID0 + k
LEFT_TINT = np.array([0.93, 0.93, 1.0])  # the left hand is drawn a little cooler than the right


@dataclass
class Primitives:
    """Everything drawn in one frame, in world coordinates. Colours are RGB in [0, 1].

    spheres: centers (S, 3), radii (S,); capsules: open cylinders p0 -> p1 (C, 3) with radii (C,)
    (their round ends come from spheres at the joints); cylinders: capped, p0 (base centre) -> p1 (top
    centre; ``bottom`` False: no bottom disk, for cylinders standing on something); boxes: centers (B, 3),
    rotations (B, 3, 3) box -> world, half extents (B, 3) and
    ``stripes`` (B,) int: > 0 draws that many dark key lines across the box's local x (a piano keyboard),
    ``glow`` (B,) bool: drawn in its flat colour, unshaded (a lamp).
    Spheres and capsules may carry a ``part`` (0..7) so that a large piece of a group (a forearm reaching
    behind the camera) does not make the whole group's screen rectangle huge.
    """

    sphere_c: list = field(default_factory=list)
    sphere_r: list = field(default_factory=list)
    sphere_rgb: list = field(default_factory=list)
    sphere_id: list = field(default_factory=list)
    caps_p0: list = field(default_factory=list)
    caps_p1: list = field(default_factory=list)
    caps_r: list = field(default_factory=list)
    caps_rgb: list = field(default_factory=list)
    caps_id: list = field(default_factory=list)
    cyl_p0: list = field(default_factory=list)
    cyl_p1: list = field(default_factory=list)
    cyl_r: list = field(default_factory=list)
    cyl_rgb: list = field(default_factory=list)
    cyl_id: list = field(default_factory=list)
    cyl_bottom: list = field(default_factory=list)
    box_c: list = field(default_factory=list)
    box_R: list = field(default_factory=list)
    box_h: list = field(default_factory=list)
    box_rgb: list = field(default_factory=list)
    box_id: list = field(default_factory=list)
    box_stripes: list = field(default_factory=list)
    box_glow: list = field(default_factory=list)

    def add_spheres(self, c, r, rgb, gid: int, part: int = 0) -> None:
        c = np.asarray(c, np.float64).reshape(-1, 3)
        self.sphere_c.append(c)
        self.sphere_r.append(np.broadcast_to(np.asarray(r, np.float64), (len(c),)))
        self.sphere_rgb.append(np.broadcast_to(np.asarray(rgb, np.float64), (len(c), 3)))
        self.sphere_id.append(np.full(len(c), gid * PARTS + part))

    def add_capsules(self, p0, p1, r, rgb, gid: int, part: int = 0) -> None:
        p0 = np.asarray(p0, np.float64).reshape(-1, 3)
        self.caps_p0.append(p0)
        self.caps_p1.append(np.asarray(p1, np.float64).reshape(-1, 3))
        self.caps_r.append(np.broadcast_to(np.asarray(r, np.float64), (len(p0),)))
        self.caps_rgb.append(np.broadcast_to(np.asarray(rgb, np.float64), (len(p0), 3)))
        self.caps_id.append(np.full(len(p0), gid * PARTS + part))

    def add_cylinder(self, p0, p1, r: float, rgb, gid: int, bottom: bool = True) -> None:
        self.cyl_p0.append(np.asarray(p0, np.float64).reshape(1, 3))
        self.cyl_p1.append(np.asarray(p1, np.float64).reshape(1, 3))
        self.cyl_r.append(np.array([r], np.float64))
        self.cyl_rgb.append(np.asarray(rgb, np.float64).reshape(1, 3))
        self.cyl_id.append(np.array([gid * PARTS]))
        self.cyl_bottom.append(np.array([bottom]))

    def add_box(self, c, R, half, rgb, gid: int, stripes: int = 0, glow: bool = False) -> None:
        self.box_c.append(np.asarray(c, np.float64).reshape(1, 3))
        self.box_R.append(np.asarray(R, np.float64).reshape(1, 3, 3))
        self.box_h.append(np.asarray(half, np.float64).reshape(1, 3))
        self.box_rgb.append(np.asarray(rgb, np.float64).reshape(1, 3))
        self.box_id.append(np.array([gid * PARTS]))
        self.box_stripes.append(np.array([stripes]))
        self.box_glow.append(np.array([float(glow)]))


def _cat(parts: list, shape: tuple) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(shape, np.float32)


def pixel_rays(K: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) camera-frame ray directions through pixel centres, with z = 1."""
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    x = (u - K[0, 2]) / K[0, 0]
    y = (v - K[1, 2]) / K[1, 1]
    return np.stack([x, y, np.ones_like(x)], axis=-1).astype(np.float32)


def _bboxes(lo: np.ndarray, hi: np.ndarray, K: np.ndarray, width: int, height: int) -> list:
    """Pixel rectangles (v0, v1, u0, u1) covering camera-frame axis-aligned boxes lo, hi (P, 3); None if behind."""
    corner = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], bool)  # (8, 3)
    pts = np.where(corner[None], hi[:, None], lo[:, None])  # (P, 8, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * pts[..., 0] / pts[..., 2] + K[0, 2]
        v = K[1, 1] * pts[..., 1] / pts[..., 2] + K[1, 2]
    u0 = np.maximum(np.floor(u.min(1)) - 1, 0)
    u1 = np.minimum(np.ceil(u.max(1)) + 1, width)
    v0 = np.maximum(np.floor(v.min(1)) - 1, 0)
    v1 = np.minimum(np.ceil(v.max(1)) + 1, height)
    out: list = []
    for i in range(len(lo)):
        if hi[i, 2] <= NEAR:
            out.append(None)
        elif lo[i, 2] <= NEAR:  # crosses the near plane: be conservative
            out.append((0, height, 0, width))
        elif u0[i] >= u1[i] or v0[i] >= v1[i]:
            out.append(None)
        else:
            out.append((int(v0[i]), int(v1[i]), int(u0[i]), int(u1[i])))
    return out


def _hit_spheres(d, c, r):
    """d (P, 3), c (N, 3), r (N,) -> t (P, N) (inf on a miss)."""
    a = (d * d).sum(-1)[:, None]
    b = d @ c.T
    cc = (c * c).sum(-1) - r * r
    disc = b * b - a * cc
    with np.errstate(invalid="ignore"):
        t = (b - np.sqrt(disc)) / a
    return np.where((disc >= 0) & (t > NEAR), t, np.inf)


def _hit_tubes(d, p0, p1, r):
    """Open cylinders (no caps). Returns t (P, N) and the axial coordinate h (P, N) of the hit."""
    axis = p1 - p0
    length = np.linalg.norm(axis, axis=-1)
    a = axis / np.maximum(length, 1e-12)[:, None]
    da = d @ a.T  # (P, N)
    p0a = (p0 * a).sum(-1)
    p0_perp = p0 - p0a[:, None] * a
    A = (d * d).sum(-1)[:, None] - da * da
    B = d @ p0_perp.T  # d_perp . p0_perp (p0_perp is orthogonal to a)
    C = (p0_perp * p0_perp).sum(-1) - r * r
    disc = B * B - A * C
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (B - np.sqrt(disc)) / A
    h = t * da - p0a
    ok = (disc >= 0) & (A > 1e-12) & (t > NEAR) & (h >= 0) & (h <= length)
    return np.where(ok, t, np.inf), a


def _hit_disks(d, center, normal, r):
    """Disks: t (P, N)."""
    dn = d @ normal.T
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (center * normal).sum(-1) / dn
    x = t[..., None] * d[:, None, :] - center
    ok = np.isfinite(t) & (t > NEAR) & ((x * x).sum(-1) <= r * r)
    return np.where(ok, t, np.inf)


def _hit_boxes(d, c, R, half):
    """Oriented boxes: t (P, N) and the index (P, N) in 0..5 of the face hit (axis * 2 + (sign > 0))."""
    o = np.einsum("nji,nj->ni", R, -c)  # camera origin in box frame (N, 3)
    db = np.matmul(d, R).transpose(1, 0, 2)  # (P, N, 3): R^T d per box
    db = np.where(np.abs(db) < 1e-9, 1e-9, db)
    inv = 1.0 / db
    t1 = (-half - o) * inv
    t2 = (half - o) * inv
    tlo = np.minimum(t1, t2)
    tmin = tlo.max(-1)
    tmax = np.maximum(t1, t2).min(-1)
    axis = tlo.argmax(-1)
    ok = (tmax >= tmin) & (tmin > NEAR)
    sign = np.take_along_axis(db, axis[..., None], -1)[..., 0] < 0  # entering through the + face
    return np.where(ok, tmin, np.inf), axis * 2 + sign


def _keep(best, t, rgb_n, normal_fn) -> None:
    """t (P, N): keep each pixel's nearest hit if nearer than ``best`` (t, rgb, normal), updated in place."""
    best_t, best_rgb, best_n = best
    k = t.argmin(1)
    tk = t[np.arange(len(t)), k]
    m = tk < best_t
    if m.any():
        best_t[m] = tk[m]
        best_rgb[m] = rgb_n[k[m]]
        best_n[m] = normal_fn(m, k[m], tk[m])


def _tube_normal(x, a):
    """Unit component of x (M, 3) orthogonal to the axes a (M, 3)."""
    x = x - (x * a).sum(-1, keepdims=True) * a
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def render(
    prims: Primitives,
    K: np.ndarray,
    E: np.ndarray,
    width: int,
    height: int,
    floor_z: float | None = 0.0,
    table: dict | None = None,
    light_dir=(0.3, 0.2, 1.0),
    rays: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one frame.

    K (3, 3) intrinsics, E (3, 4) world -> camera. ``floor_z``: height of a checkered floor (None: none).
    ``table``: an optional horizontal table top {"center" (3,) (top surface), "yaw", "half" (2,), "rgb",
    "id"}, drawn as a rectangle (cheaper than a full-image box). Returns rgb (H, W, 3) uint8,
    depth (H, W) float32 (camera z, inf where nothing is hit) and ids (H, W) int16 (group id of the visible
    surface; 0 background, 1 floor).
    """
    E = np.asarray(E, np.float32)
    R, tc = E[:, :3], E[:, 3]
    if rays is None:
        rays = pixel_rays(K, width, height)
    flat_rays = rays.reshape(-1, 3)
    HW = height * width
    light = R @ (np.asarray(light_dir, np.float32) / np.linalg.norm(light_dir))
    up_c = R[:, 2]  # world up in camera coordinates

    # Static layer, in world coordinates: background wall, floor plane, table top (all horizontal). Each plane
    # is shaded only on the pixels it covers (index arrays, not full-image selects).
    dw = flat_rays @ R  # R^T d: world direction of each ray (scaled so that its camera z is 1)
    cw = -(R.T @ tc)  # camera centre
    dz = dw[:, 2]
    cos_up = dz / np.sqrt(np.einsum("ij,ij->i", dw, dw))
    rgb = np.array([0.78, 0.80, 0.84], np.float32) * (0.85 + 0.15 * cos_up)[:, None]
    depth = np.full(HW, np.inf, np.float32)
    ids = np.zeros(HW, np.int16)
    plane_shade = np.float32(0.4 + 0.4 * max(float(up_c @ light), 0.0)) + 0.2 * np.abs(cos_up)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_dz = 1.0 / dz
    if floor_z is not None:
        t = (floor_z - cw[2]) * inv_dz
        hit = np.flatnonzero(np.isfinite(t) & (t > NEAR))
        th = t[hit]
        checker = (np.floor((cw[0] + th * dw[hit, 0]) * 2.0) + np.floor((cw[1] + th * dw[hit, 1]) * 2.0)) % 2 > 0
        col = np.where(checker[:, None], np.array([0.42, 0.38, 0.34], np.float32),
                       np.array([0.50, 0.46, 0.41], np.float32))  # 0.5 m tiles
        depth[hit], ids[hit], rgb[hit] = th, FLOOR_ID, col * plane_shade[hit, None]
    if table is not None:
        c = np.asarray(table["center"], np.float32)
        t = (c[2] - cw[2]) * inv_dz
        cand = np.flatnonzero(np.isfinite(t) & (t > NEAR) & (t < depth))
        th = t[cand]
        x, y = cw[0] + th * dw[cand, 0] - c[0], cw[1] + th * dw[cand, 1] - c[1]
        cy, sy = np.cos(table["yaw"]), np.sin(table["yaw"])
        inside = (np.abs(cy * x + sy * y) <= table["half"][0]) & (np.abs(-sy * x + cy * y) <= table["half"][1])
        hit = cand[inside]
        depth[hit], ids[hit] = th[inside], table["id"]
        rgb[hit] = np.asarray(table["rgb"], np.float32) * plane_shade[hit, None]

    sphere_c = (_cat(prims.sphere_c, (0, 3))) @ R.T + tc
    sphere_r, sphere_rgb, sphere_id = _cat(prims.sphere_r, (0,)), _cat(prims.sphere_rgb, (0, 3)), _cat(
        prims.sphere_id, (0,))
    caps_p0 = _cat(prims.caps_p0, (0, 3)) @ R.T + tc
    caps_p1 = _cat(prims.caps_p1, (0, 3)) @ R.T + tc
    caps_r, caps_rgb, caps_id = _cat(prims.caps_r, (0,)), _cat(prims.caps_rgb, (0, 3)), _cat(prims.caps_id, (0,))
    cyl_p0 = _cat(prims.cyl_p0, (0, 3)) @ R.T + tc
    cyl_p1 = _cat(prims.cyl_p1, (0, 3)) @ R.T + tc
    cyl_r, cyl_rgb, cyl_id = _cat(prims.cyl_r, (0,)), _cat(prims.cyl_rgb, (0, 3)), _cat(prims.cyl_id, (0,))
    cyl_bottom = np.concatenate(prims.cyl_bottom) if prims.cyl_bottom else np.zeros(0, bool)
    box_c = _cat(prims.box_c, (0, 3)) @ R.T + tc
    box_R = R @ _cat(prims.box_R, (0, 3, 3)) if prims.box_R else np.zeros((0, 3, 3))
    box_h, box_rgb, box_id = _cat(prims.box_h, (0, 3)), _cat(prims.box_rgb, (0, 3)), _cat(prims.box_id, (0,))
    box_stripes = _cat(prims.box_stripes, (0,))
    box_glow = _cat(prims.box_glow, (0,))

    # Camera-frame bounding box of every primitive, then of every part (group id * PARTS + part).
    box_ext = (np.abs(box_R) @ box_h[..., None])[..., 0] if len(box_h) else np.zeros((0, 3), np.float32)
    lo_all = np.concatenate([sphere_c - sphere_r[:, None], np.minimum(caps_p0, caps_p1) - caps_r[:, None],
                             np.minimum(cyl_p0, cyl_p1) - cyl_r[:, None], box_c - box_ext])
    hi_all = np.concatenate([sphere_c + sphere_r[:, None], np.maximum(caps_p0, caps_p1) + caps_r[:, None],
                             np.maximum(cyl_p0, cyl_p1) + cyl_r[:, None], box_c + box_ext])
    parts, inverse = np.unique(np.concatenate([sphere_id, caps_id, cyl_id, box_id]).astype(np.int64),
                               return_inverse=True)
    lo = np.full((len(parts), 3), np.inf, np.float32)
    hi = np.full((len(parts), 3), -np.inf, np.float32)
    np.minimum.at(lo, inverse, lo_all)
    np.maximum.at(hi, inverse, hi_all)
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    ends = np.cumsum([len(sphere_id), len(caps_id), len(cyl_id)])
    for part, bb, idx in zip(parts, _bboxes(lo, hi, K, width, height), members, strict=True):
        if bb is None:
            continue
        g = part // PARTS
        s_m, c_m = idx[idx < ends[0]], idx[(idx >= ends[0]) & (idx < ends[1])] - ends[0]
        y_m, b_m = idx[(idx >= ends[1]) & (idx < ends[2])] - ends[1], idx[idx >= ends[2]] - ends[2]
        v0, v1, u0, u1 = bb
        d = rays[v0:v1, u0:u1].reshape(-1, 3)
        P = len(d)
        best_t = np.full(P, np.inf)
        best_rgb = np.zeros((P, 3), np.float32)
        best_n = np.zeros((P, 3), np.float32)
        best_glow = np.zeros(P, bool)
        best = (best_t, best_rgb, best_n)
        if len(s_m):
            c, r = sphere_c[s_m], sphere_r[s_m]
            t = _hit_spheres(d, c, r)
            _keep(best, t, sphere_rgb[s_m], lambda m, k, t, c=c, r=r, d=d: (t[:, None] * d[m] - c[k]) / r[k, None])
        if len(c_m):
            p0, p1 = caps_p0[c_m], caps_p1[c_m]
            t, a = _hit_tubes(d, p0, p1, caps_r[c_m])
            _keep(best, t, caps_rgb[c_m],
                  lambda m, k, t, p0=p0, a=a, d=d: _tube_normal(t[:, None] * d[m] - p0[k], a[k]))
        if len(y_m):
            p0, p1, r = cyl_p0[y_m], cyl_p1[y_m], cyl_r[y_m]
            t, a = _hit_tubes(d, p0, p1, r)
            _keep(best, t, cyl_rgb[y_m], lambda m, k, t, p0=p0, a=a, d=d: _tube_normal(t[:, None] * d[m] - p0[k], a[k]))
            _keep(best, _hit_disks(d, p1, a, r), cyl_rgb[y_m], lambda m, k, t, a=a: np.broadcast_to(a[k], (len(k), 3)))
            low = cyl_bottom[y_m]
            if low.any():
                _keep(best, _hit_disks(d, p0[low], a[low], r[low]), cyl_rgb[y_m][low],
                      lambda m, k, t, a=a[low]: np.broadcast_to(-a[k], (len(k), 3)))
        if len(b_m):
            c, Rb, h = box_c[b_m], box_R[b_m], box_h[b_m]
            t, face = _hit_boxes(d, c, Rb, h)
            k = t.argmin(1)
            tk = t[np.arange(P), k]
            m = tk < best_t
            if m.any():
                f = face[np.arange(P), k][m]
                km = k[m]
                n = Rb[km, :, f // 2] * np.where(f % 2 == 1, 1.0, -1.0)[:, None]
                col = box_rgb[b_m][km]
                n_str = box_stripes[b_m][km]
                if (n_str > 0).any():
                    # Dark key lines across the box's local x axis (a keyboard).
                    xb = np.einsum("nji,nj->ni", Rb[km], tk[m, None] * d[m] - c[km])
                    u = (xb[:, 0] / (2 * h[km, 0]) + 0.5) * np.maximum(n_str, 1)
                    line = (n_str > 0) & (u - np.floor(u) < 0.12) & (f == 5)
                    col[line] *= 0.15
                best_t[m], best_rgb[m], best_n[m] = tk[m], col, n
                best_glow[m] = box_glow[b_m][km] > 0

        # Flat indices of the group's pixel rectangle; write back only where the group is nearest.
        pix = (np.arange(v0, v1)[:, None] * width + np.arange(u0, u1)[None, :]).reshape(-1)
        win = best_t < depth[pix]
        if not win.any():
            continue
        pw = pix[win]
        # Lambert shading from a fixed world light plus a little head-lamp, so nothing goes fully black.
        n, dv = best_n[win], d[win]
        ndv = -(n * dv).sum(-1) / np.sqrt((dv * dv).sum(-1))
        n = np.where(ndv[:, None] < 0, -n, n)  # face the camera
        shade = np.clip(0.40 + 0.40 * np.clip(n @ light, 0, None) + 0.20 * np.abs(ndv), 0, 1)
        shade = np.where(best_glow[win], 1.0, shade)
        depth[pw], ids[pw], rgb[pw] = best_t[win], g, best_rgb[win] * shade[:, None]

    img = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8).reshape(height, width, 3)
    return img, depth.reshape(height, width), ids.reshape(height, width)


# --------------------------------------------------------------------------------------------------
# The frames of a take


def frame_primitives(plan: TakePlan, sim: TakeSim, f: int) -> Primitives:
    """The primitives of grid frame f, in world coordinates (the table top is drawn by the renderer)."""
    prims = Primitives()
    for k, o in enumerate(plan.objects):
        R, p = sim.object_R[f, k], sim.object_p[f, k]
        gid = OBJECT_ID0 + k
        if o.shape == "cylinder":
            # No bottom disk: from the head it is never seen (a held object's bottom is hidden by the hand).
            prims.add_cylinder(p, p + R[:, 2] * o.size[1], o.size[0], o.rgb, gid, bottom=False)
            if o.kind in ("jar", "bottle"):  # a lid in a darker shade
                lid_r = o.size[0] * (0.9 if o.kind == "jar" else 0.6)
                top_p = p + R[:, 2] * o.size[1]
                prims.add_cylinder(top_p, top_p + R[:, 2] * 0.015, lid_r, np.array(o.rgb) * 0.6, gid, bottom=False)
        elif o.shape == "box":
            prims.add_box(p + R[:, 2] * o.size[2] / 2, R, [o.size[0], o.size[1], o.size[2] / 2], o.rgb, gid,
                          stripes=10 if o.kind == "keypad" else 0)
        else:
            prims.add_spheres(p + R[:, 2] * o.size[0], o.size[0], o.rgb, gid)
    # The lamp: a post and a panel facing the person (the scene's -x), in world coordinates.
    G = plan.world_T[:3, :3]
    base = sim.lamp
    prims.add_box(base + G[:, 2] * (LAMP_POST_HEIGHT / 2), G, [0.012, 0.012, LAMP_POST_HEIGHT / 2], LAMP_POST_RGB,
                  LAMP_ID)
    prims.add_box(base + G[:, 2] * (LAMP_POST_HEIGHT + LAMP_PANEL[2]), G, LAMP_PANEL, lamp_colour(sim.cue_phase[f]),
                  LAMP_ID, glow=True)
    radii = joint_radii(plan.hand.scale)
    bones = np.array(skeleton.HAND_BONES)
    for n, h in enumerate(HANDS):
        j = sim.joints[f, 21 * n : 21 * (n + 1)]
        skin = plan.skin if h == "right" else plan.skin * LEFT_TINT
        gid = HAND_ID[h]
        prims.add_spheres(j, radii, skin, gid)
        prims.add_capsules(j[bones[:, 0]], j[bones[:, 1]], np.minimum(radii[bones[:, 0]], radii[bones[:, 1]]) * 0.95,
                           skin, gid)
        # Palm: thick metacarpals and a knuckle bar.
        prims.add_capsules(j[[0, 0, 0, 5, 9, 13]], j[[9, 13, 17, 9, 13, 17]], 0.013 * plan.hand.scale, skin, gid)
        prims.add_capsules(j[[0, 0]], j[[5, 1]], 0.014 * plan.hand.scale, skin, gid)
        # Forearm: a bit of wrist skin, then a sleeve.
        el = sim.elbows[f, n]
        d = el - j[0]
        cuff = j[0] + d * (0.06 / max(np.linalg.norm(d), 1e-6))
        prims.add_capsules(j[0], cuff, 0.022 * plan.hand.scale, skin, gid)
        prims.add_capsules(cuff, el, 0.03 * plan.hand.scale, plan.sleeve, gid, part=1)
        prims.add_spheres(cuff, 0.03 * plan.hand.scale, plan.sleeve, gid, part=1)
        prims.add_spheres(el, 0.03 * plan.hand.scale, plan.sleeve, gid, part=1)
    return prims


def render_take(cfg: SynthConfig, plan: TakePlan, sim: TakeSim) -> dict[str, np.ndarray]:
    """Render every grid frame and derive the per-joint visibility labels.

    Returns frames (F, S, S, 3) uint8, in_view (F, 42), visible (F, 42) (own hand is the nearest surface
    at the joint's pixel), occluded_other (F, 42) (an object or the other hand is in front),
    object_pixels (F, O) (visible pixels of each object) and lamp_pixels (F,) (of the lamp's panel and post).
    """
    S = cfg.image_size
    K = sim.intrinsics
    rays = pixel_rays(K, S, S)
    F, n_obj = len(sim.frame_numbers), len(plan.objects)
    frames = np.zeros((F, S, S, 3), np.uint8)
    in_view = np.zeros((F, 42), bool)
    visible = np.zeros((F, 42), bool)
    occ_other = np.zeros((F, 42), bool)
    object_pixels = np.zeros((F, n_obj), np.int64)
    lamp_pixels = np.zeros(F, np.int64)
    radii = np.tile(joint_radii(plan.hand.scale), 2)
    G, tb = plan.world_T, plan.scene.table
    table = dict(center=G[:3, :3] @ np.array([(tb.front + tb.back) / 2, 0.0, tb.z]) + G[:3, 3],
                 yaw=math.atan2(G[1, 0], G[0, 0]), half=((tb.back - tb.front) / 2, tb.half_width),
                 rgb=(0.62, 0.62, 0.66), id=TABLE_ID)
    own = np.repeat([HAND_ID["right"], HAND_ID["left"]], 21)
    for f in range(F):
        E = sim.extrinsics[f]
        img, depth, ids = render(frame_primitives(plan, sim, f), K, E, S, S, floor_z=sim.floor_z, table=table,
                                 rays=rays)
        frames[f] = img
        counts = np.bincount(ids.ravel().astype(np.int64), minlength=OBJECT_ID0 + n_obj)
        object_pixels[f] = counts[OBJECT_ID0:OBJECT_ID0 + n_obj]
        lamp_pixels[f] = counts[LAMP_ID]
        Xc = sim.joints[f] @ E[:, :3].T + E[:, 3]
        z = Xc[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = K[0, 0] * Xc[:, 0] / z + K[0, 2]
            v = K[1, 1] * Xc[:, 1] / z + K[1, 2]
        ok = (z > 0.05) & (u >= 0) & (u < S) & (v >= 0) & (v < S)
        in_view[f] = ok
        ui = np.clip(np.nan_to_num(u).astype(int), 0, S - 1)
        vi = np.clip(np.nan_to_num(v).astype(int), 0, S - 1)
        front = depth[vi, ui] < z - radii - 0.004  # something clearly in front of the joint's sphere
        hit = ids[vi, ui]
        # Visible: the pixel shows the joint's own hand, at most 2 cm in front of the joint's surface.
        visible[f] = ok & (hit == own) & (depth[vi, ui] > z - radii - 0.02)
        occ_other[f] = ok & front & (hit != own)
    return dict(frames=frames, in_view=in_view, visible=visible, occluded_other=occ_other,
                object_pixels=object_pixels, lamp_pixels=lamp_pixels)


def label_validity(cfg: SynthConfig, plan: TakePlan, vis: dict[str, np.ndarray]) -> np.ndarray:
    """EgoExo4D-style annotation validity (F, 42): never outside the view, often not when occluded."""
    rng = np.random.default_rng([cfg.seed, plan.index, 11])
    F = len(vis["in_view"])
    drop = vis["occluded_other"] & (rng.random((F, 42)) < cfg.occlusion_drop_prob)
    self_occ = vis["in_view"] & ~vis["visible"] & ~vis["occluded_other"]
    drop |= self_occ & (rng.random((F, 42)) < cfg.self_occlusion_drop_prob)
    # Random missing labels in short bursts (~3 frames per joint) and whole hands for ~10 frames.
    starts = rng.random((F, 42)) < cfg.joint_dropout_rate / 3
    hand_starts = rng.random((F, 2)) < cfg.hand_dropout_rate / 10
    for lag in range(3):
        drop[lag:] |= starts[: F - lag]
    for lag in range(10):
        drop[lag:] |= np.repeat(hand_starts[: F - lag], 21, axis=1)
    return vis["in_view"] & ~drop
