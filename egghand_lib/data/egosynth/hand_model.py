"""The person of EgoSynth: a 21-joint hand skeleton, keyframed hand trajectories and the body they ride on.

Hand-local frame: x towards the middle knuckle, y to the thumb side of the right hand, z out of the back
of the hand; the left hand is the mirror image (y -> -y). Each finger bends in its own plane, so bone
lengths never change. Trajectories are minimum-jerk segments between ``Key`` poses, anchored either to
the scene ("world") or to the moving body ("body": the rest pose follows the person when they step).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from egghand_lib import skeleton

_FINGER_BASE = {  # knuckle (finger_1) positions in metres, adult average
    "thumb": (0.026, 0.021, -0.012), "index": (0.080, 0.024, 0.0), "middle": (0.083, 0.004, 0.0),
    "ring": (0.078, -0.014, -0.002), "pinky": (0.070, -0.031, -0.005),
}
_PHALANGES = {  # finger_1 -> _2 -> _3 -> _4 lengths
    "thumb": (0.040, 0.031, 0.026), "index": (0.041, 0.024, 0.020), "middle": (0.046, 0.028, 0.021),
    "ring": (0.043, 0.027, 0.021), "pinky": (0.034, 0.020, 0.019),
}
_SPLAY = {"index": 0.12, "middle": 0.0, "ring": -0.10, "pinky": -0.22}  # radians in the palm plane
# Flexion (radians) per finger joint at closure 0 (relaxed) and 1 (fist): within anatomical limits.
_FLEX_OPEN = np.radians([8.0, 12.0, 6.0])
_FLEX_CLOSED = np.radians([80.0, 100.0, 65.0])
_THUMB_OPEN = np.radians([0.0, 5.0, 5.0])
_THUMB_CLOSED = np.radians([15.0, 40.0, 60.0])
_JOINT_RADIUS = {"thumb": 0.0095, "index": 0.0085, "middle": 0.0088, "ring": 0.0082, "pinky": 0.0072}


@dataclass
class HandModel:
    """A subject's hand: knuckle positions and phalanx lengths (scaled), fixed for the whole take."""

    base: dict[str, np.ndarray]
    phalanges: dict[str, np.ndarray]
    scale: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> HandModel:
        scale = float(rng.uniform(0.88, 1.12))
        base = {f: np.array(v) * scale * rng.uniform(0.97, 1.03) for f, v in _FINGER_BASE.items()}
        phal = {f: np.array(v) * scale * rng.uniform(0.95, 1.05, 3) for f, v in _PHALANGES.items()}
        return cls(base, phal, scale)

    def local_joints(self, closure: np.ndarray, spread: np.ndarray) -> np.ndarray:
        """closure (F, 5) in [0, 1] per finger (thumb..pinky), spread (F,) in [-1, 1] -> (F, 21, 3) right hand.

        Each finger bends in its own plane, so bone lengths never change.
        """
        closure = np.clip(closure, 0.0, 1.0)
        F = len(closure)
        out = np.zeros((F, 21, 3))
        z = np.array([0.0, 0.0, 1.0])
        # Thumb: its rest direction turns towards the palm (opposition) as it closes.
        c = closure[:, 0:1]
        d_open, d_opp = np.array([0.60, 0.75, -0.28]), np.array([0.62, 0.15, -0.77])
        d0 = (1 - c) * d_open + c * d_opp
        d0 /= np.linalg.norm(d0, axis=-1, keepdims=True)
        curl = np.array([0.0, -0.6, -0.8])
        c0 = curl - (d0 @ curl)[:, None] * d0
        c0 /= np.linalg.norm(c0, axis=-1, keepdims=True)
        angles = _THUMB_OPEN + c * (_THUMB_CLOSED - _THUMB_OPEN)  # (F, 3)
        p = np.broadcast_to(self.base["thumb"], (F, 3)).copy()
        out[:, 1] = p
        cum = np.zeros(F)
        for k in range(3):
            cum = cum + angles[:, k]
            p = p + self.phalanges["thumb"][k] * (np.cos(cum)[:, None] * d0 + np.sin(cum)[:, None] * c0)
            out[:, 2 + k] = p
        for i, f in enumerate(skeleton.FINGERS[1:], start=1):
            a = _SPLAY[f] * (1 + 0.6 * spread)
            d0 = np.stack([np.cos(a), np.sin(a), np.zeros(F)], -1)
            angles = _FLEX_OPEN + closure[:, i : i + 1] * (_FLEX_CLOSED - _FLEX_OPEN)
            p = np.broadcast_to(self.base[f], (F, 3)).copy()
            out[:, 1 + 4 * i] = p
            cum = np.zeros(F)
            for k in range(3):
                cum = cum + angles[:, k]
                p = p + self.phalanges[f][k] * (np.cos(cum)[:, None] * d0 - np.sin(cum)[:, None] * z)
                out[:, 2 + 4 * i + k] = p
        return out

    def grip(self, closure: float) -> tuple[np.ndarray, float]:
        """Local grip point (between thumb, index and middle tips) and aperture (thumb-index tip distance)."""
        j = self.local_joints(np.full((1, 5), closure), np.zeros(1))[0]
        return (j[4] + j[8] + j[12]) / 3, float(np.linalg.norm(j[4] - j[8]))

    def closure_for_width(self, width: float) -> float:
        """The closure whose thumb-index aperture matches ``width`` (clamped to the hand's range)."""
        if not hasattr(self, "_aperture"):
            cs = np.linspace(0, 1, 41)
            j = self.local_joints(np.repeat(cs[:, None], 5, 1), np.zeros(len(cs)))
            ap = np.linalg.norm(j[:, 4] - j[:, 8], axis=-1)
            order = np.argsort(ap)
            self._aperture = (ap[order], cs[order])
        return float(np.interp(width, *self._aperture))


def euler_to_R(e: np.ndarray) -> np.ndarray:
    """(..., 3) yaw (about z), pitch (about y, fingers down), roll (about the finger axis) -> (..., 3, 3)."""
    y, p, r = e[..., 0], e[..., 1], e[..., 2]
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    Rz = np.stack([np.stack([cy, -sy, 0 * y], -1), np.stack([sy, cy, 0 * y], -1),
                   np.stack([0 * y, 0 * y, 1 + 0 * y], -1)], -2)
    Ry = np.stack([np.stack([cp, 0 * p, sp], -1), np.stack([0 * p, 1 + 0 * p, 0 * p], -1),
                   np.stack([-sp, 0 * p, cp], -1)], -2)
    Rx = np.stack([np.stack([1 + 0 * r, 0 * r, 0 * r], -1), np.stack([0 * r, cr, -sr], -1),
                   np.stack([0 * r, sr, cr], -1)], -2)
    return Rz @ Ry @ Rx


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk time scaling 10 s^3 - 15 s^4 + 6 s^5 of s in [0, 1]."""
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10 - 15 * s + 6 * s * s)


def joint_radii(scale: float) -> np.ndarray:
    """(21,) radii of the spheres drawn at one hand's joints (metres), for a hand of the given scale."""
    r = np.zeros(21)
    r[0] = 0.016
    for i, f in enumerate(skeleton.FINGERS):
        r[1 + 4 * i : 5 + 4 * i] = _JOINT_RADIUS[f] * np.array([1.1, 1.0, 0.93, 0.85])
    return r * scale


# --------------------------------------------------------------------------------------------------
# Keyframed trajectories


@dataclass
class Key:
    """A pose at time t. anchor "body": pos/yaw relative to the moving body; "world": scene frame."""

    t: float
    anchor: str
    pos: np.ndarray
    euler: np.ndarray = field(default_factory=lambda: np.zeros(3))
    fingers: np.ndarray = field(default_factory=lambda: np.full(6, 0.25))  # 5 closures + spread


class Body:
    """Where the person stands: position (x, y) and heading on the floor over time (min-jerk steps)."""

    def __init__(self) -> None:
        self.keys: list[tuple[float, np.ndarray]] = [(0.0, np.zeros(3))]

    def step_to(self, t0: float, dur: float, xyyaw) -> None:
        self.keys.append((t0, self.keys[-1][1]))
        self.keys.append((t0 + dur, np.asarray(xyyaw, float)))

    def __call__(self, T: np.ndarray) -> np.ndarray:
        """T (F,) -> (F, 3) x, y, yaw."""
        times = np.array([k[0] for k in self.keys])
        vals = np.stack([k[1] for k in self.keys])
        i = np.clip(np.searchsorted(times, T, side="right") - 1, 0, len(times) - 1)
        j = np.minimum(i + 1, len(times) - 1)
        span = np.maximum(times[j] - times[i], 1e-9)
        s = min_jerk((T - times[i]) / span)[:, None]
        return (1 - s) * vals[i] + s * vals[j]


def body_to_scene(body: np.ndarray, p: np.ndarray) -> np.ndarray:
    """body (F, 3) x, y, yaw; p (F, 3) body-local points -> scene points (F, 3)."""
    c, s = np.cos(body[:, 2]), np.sin(body[:, 2])
    x = body[:, 0] + c * p[:, 0] - s * p[:, 1]
    y = body[:, 1] + s * p[:, 0] + c * p[:, 1]
    return np.stack([x, y, p[:, 2]], -1)


def evaluate_keys(keys: list[Key], T: np.ndarray, body: Body) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-jerk interpolation between consecutive keys -> pos (F, 3), euler (F, 3), fingers (F, 6)."""
    B = body(T)
    times = np.array([k.t for k in keys])
    P = np.zeros((len(keys), len(T), 3))
    Eu = np.zeros((len(keys), len(T), 3))
    for n, k in enumerate(keys):
        if k.anchor == "body":
            P[n] = body_to_scene(B, np.broadcast_to(k.pos, (len(T), 3)))
            Eu[n] = k.euler + np.stack([B[:, 2], 0 * T, 0 * T], -1)
        else:
            P[n] = k.pos
            Eu[n] = k.euler
    Fg = np.stack([k.fingers for k in keys])
    i = np.clip(np.searchsorted(times, T, side="right") - 1, 0, len(keys) - 1)
    j = np.minimum(i + 1, len(keys) - 1)
    span = np.maximum(times[j] - times[i], 1e-9)
    s = min_jerk((T - times[i]) / span)
    f = np.arange(len(T))
    pos = (1 - s)[:, None] * P[i, f] + s[:, None] * P[j, f]
    eul = (1 - s)[:, None] * Eu[i, f] + s[:, None] * Eu[j, f]
    fing = (1 - s)[:, None] * Fg[i] + s[:, None] * Fg[j]
    return pos, eul, fing

