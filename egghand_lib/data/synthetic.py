"""EgoSynth: procedural egocentric two-hand manipulation clips written in the EgoExo4D on-disk layout.

EgoExo4D needs a licence and cannot be downloaded here, so the demo, the notebooks and the tests run on
EgoSynth: a person at a table with a few named, coloured objects performs one of several tasks stated in
a natural-language prompt, seen by a head-mounted pinhole camera. The future hand motion depends on the
task (only in the prompt) and on where the named object is (only in the frames).

On-disk layout (ROOT = the output folder; the EgoExo4D reader ``egghand_lib.data.egoexo4d`` reads it):

    ROOT/takes.json
        list of {"take_uid", "take_name", "parent_task_name" (e.g. "Cooking"), "task_name" (the scenario,
        e.g. "Making Milk Tea"), "root_dir": "takes/<take_name>", "duration_sec", "best_exo": null,
        "capture": {...}, "frame_aligned_videos": {"aria01": {"rgb": {"relative_path":
        "frame_aligned_videos/aria01_214-1.mp4"}}},
        "egosynth": {"prompt", "task_family", "target_object", "destination_object", "objects",
                     "egomotion_level", "acting_hand"}}          # EgoSynth-only extras
    ROOT/annotations/splits.json
        {"take_uid_to_split": {uid: "train" | "val" | "test"}, "split_to_take_uids": {split: [uid, ...]}}
    ROOT/annotations/ego_pose/{split}/hand/annotation/{take_uid}.json
        {"<frame_number>": [{"annotation3D": {"right_wrist": {"x", "y", "z", "num_views_for_3d"}, ...},
                             "annotation2D": {"aria01": {"right_wrist": {"x", "y", "placement": "auto"}}}}]}
        world metres, z up; frame numbers are 30 fps indices, every 3rd frame, starting at a take-specific
        offset (not 0). A joint that is not annotated (out of view, behind the camera, occluded and
        dropped, or randomly missing) is ABSENT from annotation3D and annotation2D.
    ROOT/annotations/ego_pose/{split}/camera_pose/{take_uid}.json
        {"metadata": {...}, "aria01": {"camera_intrinsics": [[fx,0,cx],[0,fy,cy],[0,0,1]],
                                       "camera_extrinsics": {"<frame_number>": [[r11,r12,r13,t1], ...]}}}
        world -> camera 3x4 (X_c = R X_w + t), OpenCV axes (+z forward, +y down), one per annotated frame.
        Intrinsics are in pixels of the stored video (a distortion-free pinhole, not Aria's fisheye).
    ROOT/annotations/egghand_episodes/{split}.json
        the prompts in the EggHand code-data format (configs/data/train.json): {"tasks": [{"task_index",
        "task"}], "episodes": [{"episode_index", "take_uid", "start_frame", "end_frame", "length",
        "task_index", "tasks": [prompt]}]}, one episode per contiguous run of annotated frames.
    ROOT/takes/<take_name>/frame_aligned_videos/aria01_214-1.mp4
        30 fps H.264 (libx264, yuv420p) ego RGB video, square (224x224 by default), frame i has pts i.
        To keep generation fast only the 10 fps grid (frame numbers = offset mod 3) is rendered; every
        rendered image is shown for 3 frames (its own frame number and the 2 after it), so decoding an
        annotated frame number returns exactly the image rendered at that instant.
    ROOT/egosynth/gt/{take_uid}.npz
        ground truth before any dropout, per annotated frame: frame_numbers (F,), joints (F, 42, 3),
        valid (F, 42), in_view (F, 42), visible (F, 42) (the joint's own hand is the nearest surface at its
        pixel), extrinsics (F, 3, 4), intrinsics (3, 3), object_positions (F, O, 3) (base centres),
        object_centers (F, O, 3), target_index (index into takes.json's egosynth.objects),
        target_pixels (F,) (pixels of the target object in the frame), hand_rgb (2, 3) (right, left base colours
        in [0, 1], before shading).
    ROOT/manifest.json   written LAST: generator version, preset, seed, every parameter, the takes.

Generation builds the whole folder in a hidden sibling (``egghand_lib.io.atomic_dir``) and renames it at
the end, so an interrupted run never leaves a folder that looks complete. Everything is deterministic
from the seed (each take has its own random stream, so takes can be generated in parallel).
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from egghand_lib import skeleton
from egghand_lib.data.render import Primitives, pixel_rays, render
from egghand_lib.geometry import look_at_extrinsics
from egghand_lib.io import atomic_dir, atomic_path, atomic_write_json

GENERATOR_VERSION = "egosynth-1.0"
EGO_CAMERA = "aria01"
VIDEO_RELPATH = "frame_aligned_videos/aria01_214-1.mp4"
FPS = 30
STRIDE = 3  # annotations on every 3rd frame (10 fps)
SPLITS = ("train", "val", "test")

# --------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class SynthConfig:
    """All parameters of a generation; stored in manifest.json."""

    preset: str = "tiny"
    seed: int = 0
    num_takes: dict[str, int] = field(default_factory=lambda: {"train": 2, "val": 1, "test": 1})
    duration_sec: tuple[float, float] = (5.0, 6.0)  # per take, uniform
    image_size: int = 224
    hfov_deg: float = 80.0  # horizontal field of view of the pinhole camera
    num_objects: tuple[int, int] = (3, 4)  # objects on the table (target and partners included)
    families: tuple[str, ...] = ()  # empty: all task families
    egomotion_mix: tuple[float, float, float] = (0.3, 0.5, 0.2)  # fractions of still / moderate / strong clips
    occlusion_drop_prob: float = 0.7  # a joint hidden behind the other hand or an object loses its label
    self_occlusion_drop_prob: float = 0.1  # a joint hidden by its own hand loses its label
    joint_dropout_rate: float = 0.02  # random missing labels (bursts of ~3 frames), per joint and frame
    hand_dropout_rate: float = 0.005  # a whole hand missing for ~1 s, per hand and frame
    first_frame_range: tuple[int, int] = (9, 60)  # 30 fps frame number of the first annotation
    crf: int = 12  # libx264 quality (lower = better)
    workers: int = 1  # processes generating takes in parallel

    def __post_init__(self) -> None:
        unknown = set(self.families) - set(FAMILIES)
        if unknown:
            raise ValueError(f"families: unknown {sorted(unknown)}; expected a subset of {list(FAMILIES)}")
        if set(self.num_takes) - set(SPLITS) or any(int(n) < 0 for n in self.num_takes.values()):
            raise ValueError(f"num_takes: expected non-negative counts for splits {SPLITS}, got {self.num_takes}")
        if self.image_size < 64:
            raise ValueError(f"image_size: expected >= 64, got {self.image_size}")
        if not 0 < self.duration_sec[0] <= self.duration_sec[1]:
            raise ValueError(f"duration_sec: expected 0 < min <= max, got {self.duration_sec}")
        for name in ("occlusion_drop_prob", "self_occlusion_drop_prob", "joint_dropout_rate", "hand_dropout_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {getattr(self, name)}")

    @property
    def focal(self) -> float:
        return self.image_size / 2 / math.tan(math.radians(self.hfov_deg) / 2)

    @property
    def intrinsics(self) -> np.ndarray:
        f, c = self.focal, self.image_size / 2
        return np.array([[f, 0, c], [0, f, c], [0, 0, 1]], dtype=np.float64)


PRESETS: dict[str, dict[str, Any]] = {
    # Used by every test of the project: 4 takes of 4.5-5.5 s (4 task families), a few seconds to generate.
    "tiny": dict(num_takes={"train": 2, "val": 1, "test": 1}, duration_sec=(4.5, 5.5), num_objects=(3, 4),
                 first_frame_range=(3, 24)),
    # Enough for a small model to learn the tasks: 8 families x 9 takes of 10-15 s.
    "bench": dict(num_takes={"train": 48, "val": 12, "test": 12}, duration_sec=(10.0, 15.0), num_objects=(3, 5),
                  workers=2),
}


def make_config(preset: str = "tiny", seed: int = 0, **overrides: Any) -> SynthConfig:
    """A SynthConfig from a preset name plus field overrides."""
    if preset not in PRESETS:
        raise ValueError(f"preset: unknown {preset!r}; expected one of {sorted(PRESETS)}")
    names = {f.name for f in dataclasses.fields(SynthConfig)}
    bad = set(overrides) - names
    if bad:
        raise ValueError(f"unknown SynthConfig field(s) {sorted(bad)}; expected some of {sorted(names)}")
    kw = {**PRESETS[preset], **overrides}
    for k in ("duration_sec", "num_objects", "families", "egomotion_mix", "first_frame_range"):
        if k in kw:
            kw[k] = tuple(kw[k])
    return SynthConfig(preset=preset, seed=int(seed), **kw)


# --------------------------------------------------------------------------------------------------
# Objects and tasks

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.12), "green": (0.12, 0.65, 0.22), "blue": (0.12, 0.28, 0.90),
    "yellow": (0.95, 0.85, 0.10), "purple": (0.55, 0.18, 0.75), "cyan": (0.08, 0.78, 0.85),
    "white": (0.95, 0.95, 0.95),  # the keyboard only; no black (it would look like a shaded sleeve)
}
# kind: shape, size ranges (radius / half extents, height), roles it can play.
KINDS: dict[str, dict[str, Any]] = {
    "cup": dict(shape="cylinder", r=(0.035, 0.045), h=(0.085, 0.11), roles={"grasp", "pour_src", "handover"}),
    "bottle": dict(shape="cylinder", r=(0.028, 0.034), h=(0.17, 0.21), roles={"grasp", "pour_src", "twist"}),
    "jar": dict(shape="cylinder", r=(0.04, 0.05), h=(0.09, 0.12), roles={"grasp", "twist", "tap"}),
    "bowl": dict(shape="cylinder", r=(0.07, 0.085), h=(0.045, 0.06), roles={"pour_dst", "place_dst"}),
    "plate": dict(shape="cylinder", r=(0.09, 0.105), h=(0.012, 0.018), roles={"place_dst"}),
    "box": dict(shape="box", hx=(0.035, 0.05), hy=(0.03, 0.045), h=(0.05, 0.08), roles={"grasp", "place_dst", "tap"}),
    "block": dict(shape="box", hx=(0.02, 0.027), hy=(0.02, 0.027), h=(0.04, 0.055),
                  roles={"grasp", "tap", "handover"}),
    "ball": dict(shape="sphere", r=(0.03, 0.04), roles={"grasp", "handover", "tap"}),
    "sponge": dict(shape="box", hx=(0.045, 0.05), hy=(0.03, 0.035), h=(0.025, 0.03), roles={"wipe"}),
    "keyboard": dict(shape="box", hx=(0.17, 0.2), hy=(0.055, 0.065), h=(0.025, 0.03), roles={"press"}),
}

# family: (target role, destination role or None, scenarios (parent, scenario), prompt templates)
FAMILY_SPECS: dict[str, dict[str, Any]] = {
    "pick_lift": dict(target="grasp", dest=None, scenarios=[("Organizing", "Sorting Groceries"),
                                                            ("Organizing", "Packing a Box")],
                      prompts=["Pick up the {obj} and lift it off the table.",
                               "Lift the {obj} up and put it back down.",
                               "Grab the {obj}{hand} and raise it to look at it.",
                               "Pick up the {obj} from the table and examine it."]),
    "place": dict(target="grasp", dest="place_dst", scenarios=[("Organizing", "Tidying the Table"),
                                                              ("Cooking", "Setting the Table")],
                  prompts=["Move the {obj} next to the {dest}.", "Place the {obj} beside the {dest}{hand}.",
                           "Pick up the {obj} and set it down near the {dest}.",
                           "Put the {obj} by the {dest} on the table."]),
    "pour": dict(target="pour_src", dest="pour_dst", scenarios=[("Cooking", "Making Milk Tea"),
                                                               ("Cooking", "Making Coffee latte")],
                 prompts=["Pour the contents of the {obj} into the {dest}.",
                          "Pour water from the {obj} into the {dest}.",
                          "Lift the {obj}{hand} and pour it into the {dest} carefully.",
                          "Empty the {obj} into the {dest}."]),
    "twist": dict(target="twist", dest=None, scenarios=[("Cooking", "Opening a Jar"),
                                                       ("Cooking", "Preparing a Drink")],
                  prompts=["Twist open the lid of the {obj}.", "Unscrew the cap of the {obj}{hand}.",
                           "Hold the {obj} steady and twist its lid.", "Turn the lid of the {obj} to open it."]),
    "press": dict(target="press", dest=None, scenarios=[("Music", "Playing Piano - Scales and Arpeggios"),
                                                       ("Music", "Playing Piano - Freeplaying")],
                  prompts=["Play a scale on the {obj}{hand}.", "Press the keys of the {obj} one finger at a time.",
                           "Play the notes on the {obj} from thumb to little finger.",
                           "Practise finger exercises on the {obj}."]),
    "wipe": dict(target="wipe", dest=None, scenarios=[("Cleaning", "Cleaning the Table"),
                                                     ("Cleaning", "Wiping the Counter")],
                 prompts=["Wipe the table with the {obj}.", "Scrub the table surface back and forth with the {obj}.",
                          "Take the {obj}{hand} and clean the table.", "Clean the spill using the {obj}."]),
    "handover": dict(target="handover", dest=None, scenarios=[("Organizing", "Passing Objects"),
                                                             ("Organizing", "Sorting Groceries")],
                     prompts=["Pass the {obj} from one hand to the other.", "Hand the {obj} over to your other hand.",
                              "Pick up the {obj} and transfer it to the other hand.",
                              "Move the {obj} across by passing it between your hands."]),
    "tap": dict(target="tap", dest=None, scenarios=[("Organizing", "Inspecting Objects"),
                                                   ("Organizing", "Counting Items")],
                prompts=["Tap the top of the {obj} with your index finger.", "Point at the {obj} and tap it{hand}.",
                         "Touch the {obj} lightly with one finger several times.",
                         "Tap on the {obj} a few times."]),
}
FAMILIES: tuple[str, ...] = tuple(FAMILY_SPECS)


@dataclass
class SceneObject:
    name: str  # "red cup"
    kind: str
    colour: str
    shape: str  # "cylinder" | "box" | "sphere"
    size: np.ndarray  # cylinder/sphere: (r, h); box: (hx, hy, h)
    pos: np.ndarray  # base centre (scene frame), on the table top
    yaw: float

    @property
    def footprint(self) -> float:
        return float(np.hypot(self.size[0], self.size[1])) if self.shape == "box" else float(self.size[0])

    @property
    def height(self) -> float:
        return float(2 * self.size[0]) if self.shape == "sphere" else float(self.size[-1])

    @property
    def grasp_width(self) -> float:
        return float(2 * min(self.size[0], self.size[1])) if self.shape == "box" else float(2 * self.size[0])


# --------------------------------------------------------------------------------------------------
# Hand model: 21 joints per hand in a hand-local frame (x: towards the middle knuckle, y: the thumb side of
# the right hand, z: the back of the hand). The left hand is the mirror image (y -> -y).

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


# --------------------------------------------------------------------------------------------------
# One take: scene, task script, motion, camera


@dataclass
class TakePlan:
    """Everything about a take that is decided before rendering."""

    index: int
    split: str
    family: str
    take_uid: str
    take_name: str
    prompt: str
    scenario: str
    parent_scenario: str
    objects: list[SceneObject]
    target: int
    dest: int | None
    acting_hand: str
    egomotion_level: float
    duration: float
    first_frame: int
    table: dict[str, float]
    hand: HandModel
    skin: np.ndarray
    sleeve: np.ndarray
    world_T: np.ndarray  # (4, 4) scene -> world
    right_keys: list[Key] = field(default_factory=list)
    left_keys: list[Key] = field(default_factory=list)
    attach: list[tuple[int, str, float, float]] = field(default_factory=list)  # (object, hand, t0, t1)
    focus: list[tuple[float, np.ndarray]] = field(default_factory=list)
    body: Body = field(default_factory=Body)
    head_turns: list[tuple[float, float, float, float]] = field(default_factory=list)  # t0, t_in, hold, angle
    sway: np.ndarray = field(default_factory=lambda: np.zeros((3, 3, 2)))


HANDS = ("right", "left")
_SIGN = {"right": -1.0, "left": 1.0}  # side of the body (scene y) of each hand


class Script:
    """Builds the keyframes of both hands for a task, advancing a clock per hand."""

    def __init__(self, plan: TakePlan, rng: np.random.Generator) -> None:
        self.p, self.rng = plan, rng
        self.keys = {"right": plan.right_keys, "left": plan.left_keys}
        self.clock = {"right": 0.0, "left": 0.0}
        self.obj_pos = [o.pos.copy() for o in plan.objects]
        for h in HANDS:
            self.keys[h].append(self.rest(h, 0.0))

    # -- poses --------------------------------------------------------------------------------------
    def rest(self, hand: str, t: float) -> Key:
        tz = self.p.table["z"]
        pos = np.array([self.p.table["front"] + 0.07, _SIGN[hand] * 0.17, tz + 0.05])
        eul = np.array([-_SIGN[hand] * 0.35, 0.1, 0.0])
        return Key(t, "body", pos, eul, np.array([0.2, 0.12, 0.12, 0.15, 0.18, 0.0]))

    def shoulder(self, hand: str) -> np.ndarray:
        return np.array([0.0, _SIGN[hand] * 0.18, self.p.table["z"] + 0.4])

    def hand_pose(self, hand: str, grip_point, yaw: float, pitch: float, roll: float, closure: float,
                  fingers: np.ndarray | None = None):
        """Wrist position and euler placing the hand's grip point (at ``closure``) on ``grip_point``."""
        eul = np.array([yaw, pitch, roll])
        g, _ = self.p.hand.grip(closure)
        if hand == "left":
            g = g * np.array([1, -1, 1])
        wrist = np.asarray(grip_point, float) - euler_to_R(eul) @ g
        fing = np.r_[np.full(5, closure), 0.0] if fingers is None else fingers
        return wrist, eul, fing

    def approach_yaw(self, hand: str, point) -> float:
        d = np.asarray(point)[:2] - self.shoulder(hand)[:2]
        return float(math.atan2(d[1], d[0]))

    def add(self, hand: str, dur: float, pos, eul, fing, anchor: str = "world") -> float:
        self.clock[hand] += max(float(dur), 0.05)
        self.keys[hand].append(Key(self.clock[hand], anchor, np.asarray(pos, float), np.asarray(eul, float),
                                   np.asarray(fing, float)))
        return self.clock[hand]

    def hold(self, hand: str, dur: float) -> float:
        k = self.keys[hand][-1]
        return self.add(hand, dur, k.pos, k.euler, k.fingers, k.anchor)

    def go_rest(self, hand: str, dur: float | None = None) -> float:
        k = self.rest(hand, 0.0)
        return self.add(hand, dur or self.rng.uniform(0.7, 1.0), k.pos, k.euler, k.fingers, "body")

    def pause(self, hand: str, lo: float = 0.3, hi: float = 1.5) -> float:
        return self.hold(hand, self.rng.uniform(lo, hi))

    def sync(self) -> None:
        t = max(self.clock.values())
        for h in HANDS:
            if self.clock[h] < t:
                self.hold(h, t - self.clock[h])

    def reach_time(self, hand: str, point) -> float:
        d = np.linalg.norm(np.asarray(point)[:2] - np.array([self.p.table["front"] + 0.07, _SIGN[hand] * 0.17]))
        return float(np.clip(0.55 + 1.2 * d, 0.6, 1.3) * self.rng.uniform(0.9, 1.1))

    def look(self, t: float, point) -> None:
        self.p.focus.append((t, np.asarray(point, float)))

    # -- object geometry ----------------------------------------------------------------------------
    def grip_point(self, k: int, pos=None) -> np.ndarray:
        o = self.p.objects[k]
        base = self.obj_pos[k] if pos is None else np.asarray(pos)
        if o.shape == "sphere":
            return base + np.array([0, 0, o.size[0]])
        return base + np.array([0, 0, min(0.7 * o.height, o.height - 0.015)])

    def grasp(self, hand: str, k: int, pitch: float = 0.55, roll: float = 0.0):
        """Keys: pre-shape above/behind the object, then close on it. Returns (wrist, euler, closure)."""
        o = self.p.objects[k]
        gp = self.grip_point(k)
        yaw = self.approach_yaw(hand, gp)
        c_pre = self.p.hand.closure_for_width(o.grasp_width + 0.04)
        c = self.p.hand.closure_for_width(o.grasp_width)
        w_pre, e_pre, f_pre = self.hand_pose(hand, gp, yaw, pitch, roll, c_pre)
        fwd = euler_to_R(e_pre)[:, 0]
        self.look(self.clock[hand] - 0.2, gp)
        self.add(hand, self.reach_time(hand, gp), w_pre - 0.05 * fwd + np.array([0, 0, 0.05]), e_pre, f_pre)
        self.add(hand, self.rng.uniform(0.3, 0.45), w_pre, e_pre, f_pre)
        w, e, f = self.hand_pose(hand, gp, yaw, pitch, roll, c)
        self.add(hand, 0.3, w, e, f)
        return w, e, c

    def release(self, hand: str, k: int, start: float, wrist, eul, c: float) -> None:
        """Attach object k to the hand from ``start`` to now, open the hand and lift it away."""
        self.p.attach.append((k, hand, start, self.clock[hand]))
        opened = np.r_[np.full(5, max(c - 0.25, 0.0)), 0.0]
        self.add(hand, 0.3, wrist, eul, opened)
        fwd = euler_to_R(eul)[:, 0]
        self.add(hand, 0.35, wrist + np.array([0, 0, 0.06]) - 0.04 * fwd, eul, opened)

    def table_point(self, xy, margin: float = 0.06) -> np.ndarray:
        t = self.p.table
        x = np.clip(xy[0], t["front"] + margin, t["back"] - margin)
        y = np.clip(xy[1], -t["half_width"] + margin, t["half_width"] - margin)
        return np.array([x, y, t["z"]])


def _plan_scene(cfg: SynthConfig, rng: np.random.Generator, family: str) -> tuple[list[SceneObject], int, int | None,
                                                                                   dict[str, float]]:
    spec = FAMILY_SPECS[family]
    table = dict(z=float(rng.uniform(0.72, 0.9)), front=0.22, back=0.22 + float(rng.uniform(0.6, 0.8)),
                 half_width=float(rng.uniform(0.5, 0.65)))
    colours = [c for c in COLOURS if c != "white"]  # white is reserved for the keyboard
    rng.shuffle(colours)
    objects: list[SceneObject] = []

    def kinds_for(role):
        return sorted(k for k, v in KINDS.items() if role in v["roles"])

    def place(kind: str, region=None) -> SceneObject | None:
        spec_k = KINDS[kind]
        if kind == "keyboard" and any(o.kind == "keyboard" for o in objects):
            return None
        if kind != "keyboard" and not colours:
            return None
        colour = "white" if kind == "keyboard" else colours.pop(0)
        if spec_k["shape"] == "box":
            size = np.array([rng.uniform(*spec_k["hx"]), rng.uniform(*spec_k["hy"]), rng.uniform(*spec_k["h"])])
        elif spec_k["shape"] == "cylinder":
            size = np.array([rng.uniform(*spec_k["r"]), rng.uniform(*spec_k["h"])])
        else:
            size = np.array([rng.uniform(*spec_k["r"])])
        obj = SceneObject(f"{colour} {kind}", kind, colour, spec_k["shape"], size, np.zeros(3), 0.0)
        for _ in range(200):
            if kind == "keyboard":
                xy = np.array([table["front"] + rng.uniform(0.2, 0.26), rng.uniform(-0.08, 0.08)])
                yaw = float(math.pi / 2 + rng.uniform(-0.1, 0.1))  # long axis across the table
            else:
                lo_y, hi_y = region if region is not None else (-0.36, 0.36)
                xy = np.array([table["front"] + rng.uniform(0.15, 0.42), rng.uniform(lo_y, hi_y)])
                yaw = float(rng.uniform(-0.6, 0.6))
            ok = all(np.linalg.norm(xy - o.pos[:2]) > obj.footprint + o.footprint + 0.05 for o in objects)
            if ok:
                obj.pos = np.array([xy[0], xy[1], table["z"]])
                obj.yaw = yaw
                objects.append(obj)
                return obj
        if colour != "white":
            colours.append(colour)
        return None

    # Keyboard first (it is big), then the target, the destination and distractors.
    target_kind = str(rng.choice(kinds_for(spec["target"])))
    region = None
    if family == "handover":
        region = (-0.3, -0.08) if rng.random() < 0.5 else (0.08, 0.3)
    colours_backup = list(colours)
    for _ in range(20):
        objects.clear()
        colours = list(colours_backup)
        t_obj = place(target_kind, region)
        dest = None
        if t_obj is not None and spec["dest"] is not None:
            for _ in range(10):
                d_obj = place(str(rng.choice([k for k in kinds_for(spec["dest"]) if k != target_kind])))
                if d_obj is not None and np.linalg.norm(d_obj.pos[:2] - t_obj.pos[:2]) > 0.2:
                    dest = 1
                    break
                if d_obj is not None:
                    objects.pop()
                    colours.insert(0, d_obj.colour)
            if dest is None:
                t_obj = None
        if t_obj is not None:
            break
    else:
        raise RuntimeError("could not place the task objects on the table")
    n_obj = int(rng.integers(cfg.num_objects[0], cfg.num_objects[1] + 1))
    distractor_kinds = [k for k in KINDS if k != "keyboard"] + (["keyboard"] if family != "press" else [])
    tries = 0
    while len(objects) < n_obj and tries < 50:
        tries += 1
        place(str(rng.choice(distractor_kinds)))
    return objects, 0, dest, table


def _script_task(s: Script, family: str, hand: str, other: str, duration: float) -> None:
    """Fill the key lists with repeated cycles of the task until the take is over."""
    p, rng = s.p, s.rng
    k = p.target
    for h in HANDS:
        s.pause(h, 0.1, 0.6)
    while min(s.clock.values()) < duration:
        if family == "pick_lift":
            w, e, c = s.grasp(hand, k)
            t_g = s.clock[hand]
            up = np.array([0, 0, rng.uniform(0.15, 0.25)]) + np.array([-0.06, -_SIGN[hand] * 0.05, 0])
            e_up = e + np.array([0, -0.2, rng.uniform(-0.4, 0.4)])
            s.add(hand, rng.uniform(0.6, 0.8), w + up, e_up, np.r_[np.full(5, c), 0])
            s.look(s.clock[hand] - 0.4, w + up)
            s.pause(hand, 0.4, 1.0)
            s.add(hand, rng.uniform(0.6, 0.8), w, e, np.r_[np.full(5, c), 0])
            s.release(hand, k, t_g, w, e, c)
            s.go_rest(hand)
        elif family == "place":
            d = p.dest
            w, e, c = s.grasp(hand, k)
            t_g = s.clock[hand]
            src = s.obj_pos[k].copy()
            if np.linalg.norm(src[:2] - p.objects[k].pos[:2]) < 1e-6:  # first time: next to the destination
                off = p.objects[d].pos[:2] - src[:2]
                off /= np.linalg.norm(off)
                goal = p.objects[d].pos[:2] - off * (p.objects[d].footprint + p.objects[k].footprint + 0.04)
                goal = s.table_point(goal)
            else:  # back where it came from
                goal = p.objects[k].pos.copy()
            delta = goal - src
            lift = np.array([0, 0, rng.uniform(0.07, 0.12)])
            s.add(hand, 0.4, w + lift, e, np.r_[np.full(5, c), 0])
            s.look(s.clock[hand] - 0.3, goal)
            s.add(hand, float(np.clip(0.5 + 1.5 * np.linalg.norm(delta), 0.6, 1.3)), w + delta + lift, e,
                  np.r_[np.full(5, c), 0])
            s.add(hand, 0.4, w + delta, e, np.r_[np.full(5, c), 0])
            s.release(hand, k, t_g, w + delta, e, c)
            s.obj_pos[k] = goal
            s.go_rest(hand)
        elif family == "pour":
            d = p.dest
            w, e, c = s.grasp(hand, k, pitch=0.35)
            t_g = s.clock[hand]
            dst = p.objects[d]
            side = np.sign(s.obj_pos[k][1] - dst.pos[1]) or 1.0
            spout = dst.pos + np.array([0, side * (dst.size[0] + 0.02), dst.height + p.objects[k].height * 0.6 + 0.06])
            gp = s.grip_point(k)
            delta = spout - gp
            s.add(hand, 0.45, w + np.array([0, 0, 0.1]), e, np.r_[np.full(5, c), 0])
            s.look(s.clock[hand] - 0.3, dst.pos)
            s.add(hand, float(np.clip(0.5 + 1.5 * np.linalg.norm(delta[:2]), 0.6, 1.3)), w + delta, e,
                  np.r_[np.full(5, c), 0])
            # Tilt towards the destination: roll about the finger axis, sign mirrored per hand.
            # Positive roll tips the held object's top towards -y: pour away from the side the cup is on.
            tilt = e + np.array([0, 0, side * rng.uniform(1.4, 1.9)])
            s.add(hand, rng.uniform(0.5, 0.7), w + delta, tilt, np.r_[np.full(5, c), 0])
            s.pause(hand, 0.6, 1.4)
            s.add(hand, rng.uniform(0.5, 0.7), w + delta, e, np.r_[np.full(5, c), 0])
            s.add(hand, float(np.clip(0.5 + 1.5 * np.linalg.norm(delta[:2]), 0.6, 1.3)), w + np.array([0, 0, 0.1]), e,
                  np.r_[np.full(5, c), 0])
            s.add(hand, 0.4, w, e, np.r_[np.full(5, c), 0])
            s.release(hand, k, t_g, w, e, c)
            s.go_rest(hand)
        elif family == "twist":
            o = p.objects[k]
            # The other hand holds the body of the jar from the side.
            hold_pt = s.obj_pos[k] + np.array([0, 0, 0.45 * o.height])
            c_hold = p.hand.closure_for_width(o.grasp_width)
            hw, he, hf = s.hand_pose(other, hold_pt, s.approach_yaw(other, hold_pt), 0.3, -_SIGN[other] * 1.2,
                                      c_hold)
            s.add(other, s.reach_time(other, hold_pt), hw, he, hf)
            lid = s.obj_pos[k] + np.array([0, 0, o.height + 0.01])
            s.look(s.clock[hand], lid)
            c_open = p.hand.closure_for_width(o.grasp_width + 0.03)
            c_lid = p.hand.closure_for_width(o.grasp_width * 0.9)
            yaw0 = s.approach_yaw(hand, lid)
            twist = -_SIGN[hand] * rng.uniform(0.7, 1.0)  # counter-clockwise seen from above, mirrored per hand
            w0, e0, f0 = s.hand_pose(hand, lid, yaw0, 1.15, 0.0, c_open)
            s.add(hand, s.reach_time(hand, lid), w0 + np.array([0, 0, 0.05]), e0, f0)
            for _ in range(int(rng.integers(3, 6))):
                w1, e1, f1 = s.hand_pose(hand, lid, yaw0, 1.15, 0.0, c_lid)
                s.add(hand, 0.25, w1, e1, f1)
                w2, e2, f2 = s.hand_pose(hand, lid, yaw0 + twist, 1.15, 0.0, c_lid)
                s.add(hand, rng.uniform(0.35, 0.5), w2, e2, f2)
                w3, e3, f3 = s.hand_pose(hand, lid, yaw0 + twist, 1.15, 0.0, c_open)
                s.add(hand, 0.2, w3, e3, f3)
                s.add(hand, 0.3, w0, e0, f0)
            s.sync()
            s.go_rest(hand)
            s.go_rest(other)
        elif family == "press":
            kb = p.objects[k]
            both = p.acting_hand == "both"
            players = HANDS if both else (hand,)
            c0 = 0.35
            for h in players:
                half = kb.size[0] * 0.5
                y0 = kb.pos[1] + (_SIGN[h] * half * 0.5 if both else _SIGN[h] * half * 0.2)
                pt = np.array([kb.pos[0] - 0.005, y0, kb.pos[2] + kb.height + 0.012])
                wh, eh, fh = s.hand_pose(h, pt, kb.yaw - math.pi / 2, 0.35, 0.0, c0)
                s.add(h, s.reach_time(h, pt), wh + np.array([0, 0, 0.02]), eh, fh)
                s.look(s.clock[h] - 0.2, pt)
            s.sync()
            for _ in range(int(rng.integers(1, 3))):
                base = {h: s.keys[h][-1] for h in players}
                order = list(range(5)) + list(range(3, -1, -1))
                shift = 0.0
                for n, fi in enumerate(order):
                    for h in players:
                        b = base[h]
                        f_press = b.fingers.copy()
                        f_press[fi] = min(f_press[fi] + 0.35, 1.0)
                        slide = np.array([0, _SIGN[h] * shift, 0])  # after five notes, shift outwards
                        s.add(h, 0.14, b.pos + slide - np.array([0, 0, 0.012]), b.euler, f_press)
                        s.add(h, 0.14, b.pos + slide, b.euler, b.fingers)
                    if n == 4:
                        shift = 0.02
                s.pause(players[0], 0.2, 0.6)
                s.sync()
            for h in players:
                s.go_rest(h)
            s.sync()
        elif family == "wipe":
            w, e, c = s.grasp(hand, k, pitch=0.2)
            t_g = s.clock[hand]
            flat = np.r_[np.full(5, 0.15), 0.3]
            fwd = np.array([math.cos(e[0]), math.sin(e[0]), 0.0])
            lat = np.array([-fwd[1], fwd[0], 0.0])
            amp = rng.uniform(0.07, 0.11)
            n_strokes = int(rng.integers(5, 9))
            for n in range(n_strokes):
                adv = 0.025 * (n if n < n_strokes // 2 else n_strokes - n)
                side = 1 if n % 2 == 0 else -1
                s.add(hand, rng.uniform(0.32, 0.45), w + side * amp * lat + adv * fwd, e, flat)
            s.add(hand, 0.35, w, e, flat)
            s.release(hand, k, t_g, w, e, 0.3)
            s.go_rest(hand)
        elif family == "handover":
            src_pos = s.obj_pos[k].copy()
            giver = "right" if src_pos[1] < 0 else "left"
            taker = "left" if giver == "right" else "right"
            w, e, c = s.grasp(giver, k)
            t_g = s.clock[giver]
            mid = np.array([p.table["front"] + rng.uniform(0.18, 0.26), rng.uniform(-0.03, 0.03),
                            p.table["z"] + rng.uniform(0.15, 0.22)])
            gp = s.grip_point(k)
            delta = mid - gp
            s.look(s.clock[giver], mid)
            s.add(giver, 0.9, w + delta, e, np.r_[np.full(5, c), 0])
            s.sync()
            o = p.objects[k]
            c_take = p.hand.closure_for_width(o.grasp_width)
            gp_mid = gp + delta + np.array([0, 0, -0.03])
            wt, et, ft = s.hand_pose(taker, gp_mid, s.approach_yaw(taker, gp_mid), 0.2, -_SIGN[taker] * 0.9, c_take)
            fo = np.r_[np.full(5, max(c_take - 0.25, 0)), 0]
            s.add(taker, 0.8, wt - np.array([0, _SIGN[taker] * -0.05, 0]), et, fo)
            s.add(taker, 0.3, wt, et, ft)
            s.sync()
            s.release(giver, k, t_g, w + delta, e, c)
            t_take = s.clock[taker]
            s.go_rest(giver)
            goal = s.table_point(np.array([src_pos[0], -src_pos[1]]))
            s.look(s.clock[taker], goal)
            # The object's grip point went to gp + delta, 3 cm above the taker's grip point; put it down at goal.
            w_end = wt + (goal + (gp - src_pos) - np.array([0, 0, 0.03]) - gp_mid)
            s.add(taker, 0.9, w_end + np.array([0, 0, 0.04]), et, ft)
            s.add(taker, 0.35, w_end, et, ft)
            s.p.attach.append((k, taker, t_take, s.clock[taker]))
            fo2 = np.r_[np.full(5, max(c_take - 0.25, 0)), 0]
            s.add(taker, 0.3, w_end, et, fo2)
            s.add(taker, 0.3, w_end + np.array([0, 0, 0.06]), et, fo2)
            s.obj_pos[k] = goal
            s.go_rest(taker)
            s.sync()
        elif family == "tap":
            top = s.obj_pos[k] + np.array([0, 0, p.objects[k].height + 0.008])
            point = np.array([0.75, 0.0, 0.95, 0.95, 0.95, 0.0])
            yaw = s.approach_yaw(hand, top)
            # The index tip, not the grip point, goes to the top of the object.
            eul = np.array([yaw, 0.8, 0.0])
            tip = p.hand.local_joints(point[None, :5], np.zeros(1))[0, 8]
            if hand == "left":
                tip = tip * np.array([1, -1, 1])
            w = top - euler_to_R(eul) @ tip
            s.look(s.clock[hand] - 0.2, top)
            s.add(hand, s.reach_time(hand, top), w + np.array([0, 0, 0.06]), eul, point)
            for _ in range(int(rng.integers(2, 5))):
                s.add(hand, 0.15, w, eul, point)
                s.add(hand, 0.18, w + np.array([0, 0, 0.035]), eul, point)
            s.go_rest(hand)
        for h in HANDS:
            s.pause(h, 0.2, 0.8)


def plan_take(cfg: SynthConfig, index: int, split: str, family: str) -> TakePlan:
    """Decide scene, subject, task, prompt, motion keys and egomotion of take ``index`` (deterministic)."""
    rng = np.random.default_rng([cfg.seed, index, 7])
    spec = FAMILY_SPECS[family]
    objects, target, dest, table = _plan_scene(cfg, rng, family)
    tgt = objects[target]
    acting = "right" if tgt.pos[1] < 0 else "left"
    if family == "press":
        acting = str(rng.choice(["right", "left", "both"], p=[0.4, 0.2, 0.4]))
    if family == "twist":
        acting = "right" if rng.random() < 0.8 else "left"
    hand_phrase = ""
    if acting in HANDS and family not in ("handover",) and rng.random() < 0.6:
        hand_phrase = f" with your {acting} hand"
    if family == "press" and acting == "both":
        hand_phrase = " with both hands"
    template = str(rng.choice(spec["prompts"]))
    if "{hand}" not in template and hand_phrase and family == "press":
        template = template[:-1] + "{hand}."
    prompt = template.format(obj=tgt.name, dest=objects[dest].name if dest is not None else "", hand=hand_phrase)
    parent, scenario = spec["scenarios"][int(rng.integers(len(spec["scenarios"])))]
    mix = np.asarray(cfg.egomotion_mix, float)
    band = int(rng.choice(3, p=mix / mix.sum()))
    level = float([rng.uniform(0.0, 0.08), rng.uniform(0.15, 0.55), rng.uniform(0.6, 1.0)][band])
    duration = float(rng.uniform(*cfg.duration_sec))
    first = int(rng.integers(cfg.first_frame_range[0], cfg.first_frame_range[1] + 1))
    u = uuid.UUID(bytes=rng.bytes(16), version=4)
    yaw = rng.uniform(-math.pi, math.pi)
    world_T = np.eye(4)
    world_T[:3, :3] = euler_to_R(np.array([yaw, 0.0, 0.0]))
    world_T[:3, 3] = [rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(-0.3, 0.3)]
    skin = np.array([0.88, 0.66, 0.52]) * rng.uniform(0.9, 1.05)
    sleeve = np.array([[0.25, 0.27, 0.33], [0.30, 0.33, 0.28], [0.35, 0.29, 0.25]][int(rng.integers(3))])
    plan = TakePlan(
        index=index, split=split, family=family, take_uid=str(u), take_name=f"egosynth_{family}_{index:03d}",
        prompt=prompt, scenario=scenario, parent_scenario=parent, objects=objects, target=target, dest=dest,
        acting_hand=acting, egomotion_level=level, duration=duration, first_frame=first, table=table,
        hand=HandModel.sample(rng), skin=skin, sleeve=sleeve, world_T=world_T,
    )
    s = Script(plan, rng)
    hand = "right" if acting == "both" else acting
    other = "left" if hand == "right" else "right"
    _script_task(s, family, hand, other, duration + 1.0)
    _plan_egomotion(plan, rng)
    return plan


def _plan_egomotion(plan: TakePlan, rng: np.random.Generator) -> None:
    """Head sway, fast head turns and walking, scaled by the take's egomotion level."""
    lv, T = plan.egomotion_level, plan.duration + 2.0
    # Sway: 3 sinusoids per axis (yaw, pitch, roll): rows (amplitude rad, frequency Hz) and phases.
    amp = math.radians(0.3 + 4.0 * lv)
    plan.sway = np.stack([rng.uniform(0.3, 1.0, (3, 3)) * amp * np.array([[1.0], [0.7], [0.3]]),
                          rng.uniform(0.1, 0.9, (3, 3)) * (1 + lv), rng.uniform(0, 2 * math.pi, (3, 3))], -1)
    if lv > 0.3:
        t = rng.uniform(0.5, 2.0)
        while t < T:
            ang = math.radians(rng.uniform(15, 25 + 40 * lv)) * rng.choice([-1, 1])
            t_in, hold = rng.uniform(0.25, 0.6) / (0.5 + lv), rng.uniform(0.3, 1.2)
            plan.head_turns.append((t, t_in, hold, ang))
            t += t_in * 2 + hold + rng.exponential(2.0 / lv)
    if lv > 0.6:
        t = rng.uniform(0.3, 1.5)
        while t < T:
            dur = rng.uniform(0.8, 1.6)
            plan.body.step_to(t, dur, [rng.uniform(-0.08, 0.03), rng.uniform(-0.2, 0.2), rng.uniform(-0.25, 0.25)])
            t += dur + rng.uniform(0.5, 2.5)


# --------------------------------------------------------------------------------------------------
# Simulation of a planned take on the 10 fps grid


@dataclass
class TakeSim:
    """Per-frame arrays of a take on its 10 fps grid (world frame). F = number of grid frames."""

    frame_numbers: np.ndarray  # (F,) 30 fps numbers, 3 apart
    annotated: np.ndarray  # (F,) bool: frames written to the annotation files
    joints: np.ndarray  # (F, 42, 3) world, all joints (before any dropout)
    extrinsics: np.ndarray  # (F, 3, 4) world -> camera
    intrinsics: np.ndarray  # (3, 3)
    object_R: np.ndarray  # (F, O, 3, 3)
    object_p: np.ndarray  # (F, O, 3) base centres
    elbows: np.ndarray  # (F, 2, 3)
    floor_z: float


def _hand_world(plan: TakePlan, keys: list[Key], hand: str, T: np.ndarray):
    pos, eul, fing = evaluate_keys(keys, T, plan.body)
    local = plan.hand.local_joints(fing[:, :5], fing[:, 5])
    if hand == "left":
        local = local * np.array([1, -1, 1])
    R = euler_to_R(eul)
    return pos[:, None, :] + local @ R.transpose(0, 2, 1), pos, R


def simulate_take(cfg: SynthConfig, plan: TakePlan) -> TakeSim:
    """Evaluate the plan on the 10 fps grid covering the whole video (frame 0 .. duration)."""
    n_video = int(round(plan.duration * FPS))
    r = plan.first_frame % STRIDE
    grid = np.arange(r, n_video, STRIDE)
    T = grid / FPS
    joints, wrist_p, wrist_R = {}, {}, {}
    for h, keys in (("right", plan.right_keys), ("left", plan.left_keys)):
        joints[h], wrist_p[h], wrist_R[h] = _hand_world(plan, keys, h, T)
    J = np.concatenate([joints["right"], joints["left"]], axis=1)
    B = plan.body(T)

    # Objects: static, except while attached to a hand (rigidly, relative to the wrist at grasp time).
    n_obj = len(plan.objects)
    obj_R = np.zeros((len(T), n_obj, 3, 3))
    obj_p = np.zeros((len(T), n_obj, 3))
    for k, o in enumerate(plan.objects):
        obj_R[:, k] = euler_to_R(np.array([o.yaw, 0.0, 0.0]))
        obj_p[:, k] = o.pos
    for k, h, t0, t1 in sorted(plan.attach, key=lambda a: a[2]):
        keys = plan.right_keys if h == "right" else plan.left_keys
        _, p0, R0 = _hand_world(plan, keys, h, np.array([t0]))
        _, p1, R1 = _hand_world(plan, keys, h, np.array([t1]))
        i0 = np.searchsorted(T, t0)
        Ro, po = obj_R[min(i0, len(T) - 1), k].copy(), obj_p[min(i0, len(T) - 1), k].copy()
        rel_R = R0[0].T @ Ro
        rel_p = R0[0].T @ (po - p0[0])
        during = (T >= t0) & (T <= t1)
        obj_R[during, k] = wrist_R[h][during] @ rel_R
        obj_p[during, k] = wrist_p[h][during] + (wrist_R[h][during] @ rel_p)
        after = T > t1
        obj_R[after, k] = R1[0] @ rel_R
        obj_p[after, k] = p1[0] + R1[0] @ rel_p

    # Elbows, for drawing forearms: behind the wrist, towards the shoulder, a little lower.
    elbows = np.zeros((len(T), 2, 3))
    for n, h in enumerate(HANDS):
        sh = body_to_scene(B, np.broadcast_to(np.array([0.0, _SIGN[h] * 0.2, plan.table["z"] + 0.35]), (len(T), 3)))
        x = wrist_R[h][:, :, 0] * np.array([1.0, 1.0, 0.0])  # horizontal part of the hand's direction
        x /= np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)
        to_sh = sh - wrist_p[h]
        to_sh /= np.linalg.norm(to_sh, axis=-1, keepdims=True)
        d = 0.75 * to_sh - 0.35 * x
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        elbows[:, n] = wrist_p[h] + 0.26 * plan.hand.scale * d - np.array([0, 0, 0.06])

    # Camera: eye on the moving body; gaze at the workspace, drawn towards the current focus point.
    eye_h = plan.table["z"] + 0.5 + (plan.index % 3) * 0.03
    eye_local = np.array([0.05, 0.0, eye_h])
    bob = 0.012 * plan.egomotion_level * np.sin(2 * math.pi * 1.8 * T) * (plan.egomotion_level > 0.6)
    eye = body_to_scene(B, np.broadcast_to(eye_local, (len(T), 3))) + np.stack([0 * T, 0 * T, bob], -1)
    centre = body_to_scene(B, np.broadcast_to(np.array([plan.table["front"] + 0.25, 0.0, plan.table["z"]]),
                                              (len(T), 3)))
    pull = np.zeros((len(T), 3))
    for t_f, pt in sorted(plan.focus, key=lambda f: f[0]):
        s = min_jerk((T - t_f) / 0.4)[:, None]
        pull = (1 - s) * pull + s * (0.35 * (pt - centre))
    gaze = centre + pull
    yaw_off = np.zeros(len(T))
    for t0, t_in, hold, ang in plan.head_turns:
        up = min_jerk((T - t0) / t_in)
        down = min_jerk((T - t0 - t_in - hold) / t_in)
        yaw_off += ang * (up - down)
    sway = (plan.sway[..., 0][None] * np.sin(2 * math.pi * plan.sway[..., 1][None] * T[:, None, None]
                                            + plan.sway[..., 2][None])).sum(-1)  # (F, 3)
    E_scene = np.zeros((len(T), 3, 4))
    for f in range(len(T)):
        d = gaze[f] - eye[f]
        a = yaw_off[f] + sway[f, 0]
        d = euler_to_R(np.array([a, 0.0, 0.0])) @ d
        horiz = np.hypot(d[0], d[1])
        el = math.atan2(d[2], horiz) + sway[f, 1]
        d = np.array([d[0] / horiz * math.cos(el), d[1] / horiz * math.cos(el), math.sin(el)])
        E = look_at_extrinsics(eye[f], eye[f] + d)
        c, s_ = math.cos(sway[f, 2]), math.sin(sway[f, 2])
        Rr = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]])
        E_scene[f] = Rr @ E

    # Scene -> world: one rigid motion for everything (the world frame of EgoExo4D is arbitrary up to yaw).
    G = plan.world_T
    Ginv = np.linalg.inv(G)
    J = J @ G[:3, :3].T + G[:3, 3]
    obj_R = G[:3, :3] @ obj_R
    obj_p = obj_p @ G[:3, :3].T + G[:3, 3]
    elbows = elbows @ G[:3, :3].T + G[:3, 3]
    E_world = E_scene @ Ginv
    annotated = grid >= plan.first_frame
    return TakeSim(grid, annotated, J, E_world[:, :3, :], cfg.intrinsics, obj_R, obj_p, elbows, float(G[2, 3]))


# --------------------------------------------------------------------------------------------------
# Rendering and labels

HAND_ID = {"right": 3, "left": 4}
LEFT_TINT = np.array([0.93, 0.93, 1.0])  # the left hand is drawn a little cooler than the right
TABLE_ID = 2
OBJECT_ID0 = 10


def _joint_radii(scale: float) -> np.ndarray:
    r = np.zeros(21)
    r[0] = 0.016
    for i, f in enumerate(skeleton.FINGERS):
        r[1 + 4 * i : 5 + 4 * i] = _JOINT_RADIUS[f] * np.array([1.1, 1.0, 0.93, 0.85])
    return r * scale


def frame_primitives(plan: TakePlan, sim: TakeSim, f: int) -> Primitives:
    """The primitives of grid frame f, in world coordinates (the table top is drawn by the renderer)."""
    prims = Primitives()
    for k, o in enumerate(plan.objects):
        R, p = sim.object_R[f, k], sim.object_p[f, k]
        col = COLOURS[o.colour]
        gid = OBJECT_ID0 + k
        if o.shape == "cylinder":
            prims.add_cylinder(p, p + R[:, 2] * o.size[1], o.size[0], col, gid)
            if o.kind in ("jar", "bottle"):  # a lid in a darker shade
                lid_r = o.size[0] * (0.9 if o.kind == "jar" else 0.6)
                top_p = p + R[:, 2] * o.size[1]
                prims.add_cylinder(top_p, top_p + R[:, 2] * 0.015, lid_r, np.array(col) * 0.6, gid)
        elif o.shape == "box":
            prims.add_box(p + R[:, 2] * o.size[2] / 2, R, [o.size[0], o.size[1], o.size[2] / 2], col, gid,
                          stripes=14 if o.kind == "keyboard" else 0)
        else:
            prims.add_spheres(p + R[:, 2] * o.size[0], o.size[0], col, gid)
    radii = _joint_radii(plan.hand.scale)
    for n, h in enumerate(HANDS):
        j = sim.joints[f, 21 * n : 21 * (n + 1)]
        skin = plan.skin if h == "right" else plan.skin * LEFT_TINT
        gid = HAND_ID[h]
        prims.add_spheres(j, radii, skin, gid)
        bones = np.array(skeleton.HAND_BONES)
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
        prims.add_spheres(el, 0.03 * plan.hand.scale, plan.sleeve, gid, part=2)
    return prims


def render_take(cfg: SynthConfig, plan: TakePlan, sim: TakeSim) -> dict[str, np.ndarray]:
    """Render every grid frame and derive the per-joint visibility labels.

    Returns frames (F, S, S, 3) uint8, in_view (F, 42), visible (F, 42) (own hand is the nearest surface
    at the joint's pixel), occluded_other (F, 42) (an object or the other hand is in front), and
    target_pixels (F,).
    """
    S = cfg.image_size
    K = sim.intrinsics
    rays = pixel_rays(K, S, S)
    F = len(sim.frame_numbers)
    frames = np.zeros((F, S, S, 3), np.uint8)
    in_view = np.zeros((F, 42), bool)
    visible = np.zeros((F, 42), bool)
    occ_other = np.zeros((F, 42), bool)
    target_pixels = np.zeros(F, np.int64)
    radii = np.tile(_joint_radii(plan.hand.scale), 2)
    G, tb = plan.world_T, plan.table
    table = dict(center=G[:3, :3] @ np.array([(tb["front"] + tb["back"]) / 2, 0.0, tb["z"]]) + G[:3, 3],
                 yaw=math.atan2(G[1, 0], G[0, 0]), half=((tb["back"] - tb["front"]) / 2, tb["half_width"]),
                 rgb=(0.62, 0.62, 0.66), id=TABLE_ID)
    own = np.repeat([HAND_ID["right"], HAND_ID["left"]], 21)
    for f in range(F):
        E = sim.extrinsics[f]
        img, depth, ids = render(frame_primitives(plan, sim, f), K, E, S, S, floor_z=sim.floor_z, table=table,
                                 rays=rays)
        frames[f] = img
        target_pixels[f] = int((ids == OBJECT_ID0 + plan.target).sum())
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
                target_pixels=target_pixels)


def label_validity(cfg: SynthConfig, plan: TakePlan, sim: TakeSim, vis: dict[str, np.ndarray]) -> np.ndarray:
    """EgoExo4D-style annotation validity (F, 42): never outside the view, often not when occluded."""
    rng = np.random.default_rng([cfg.seed, plan.index, 11])
    F = len(sim.frame_numbers)
    u = rng.random((F, 42))
    drop = vis["occluded_other"] & (u < cfg.occlusion_drop_prob)
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


# --------------------------------------------------------------------------------------------------
# Writing


def _r(x: float) -> float:
    return round(float(x), 6)


def _write_video(path: Path, frames: np.ndarray, frame_numbers: np.ndarray, n_video: int, crf: int) -> None:
    """30 fps video: grid frame i shown on frames frame_numbers[i] .. frame_numbers[i] + 2."""
    import av

    S = frames.shape[1]
    idx = np.clip(np.searchsorted(frame_numbers, np.arange(n_video), side="right") - 1, 0, len(frames) - 1)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=FPS)
            stream.width = stream.height = S
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1", "tune": "zerolatency"}
            stream.codec_context.thread_count = 1
            for i in range(n_video):
                vf = av.VideoFrame.from_ndarray(frames[idx[i]], format="rgb24")
                vf.pts = i
                for packet in stream.encode(vf):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def read_video_frames(path: str | Path, frame_numbers) -> np.ndarray:
    """Decode the given 30 fps frame numbers of a video -> (N, H, W, 3) uint8 RGB (PyAV)."""
    import av

    wanted = {int(n): i for i, n in enumerate(frame_numbers)}
    out: list[np.ndarray | None] = [None] * len(wanted)
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                out[wanted[i]] = frame.to_ndarray(format="rgb24")
            if i >= max(wanted):
                break
    missing = [n for n, i in wanted.items() if out[i] is None]
    if missing:
        raise ValueError(f"{path}: frames {missing[:5]} are beyond the end of the video")
    return np.stack(out)


def _take_files(root: Path, cfg: SynthConfig, plan: TakePlan) -> dict[str, Any]:
    """Simulate, render, label and write one take; returns its takes.json entry and episode runs."""
    sim = simulate_take(cfg, plan)
    vis = render_take(cfg, plan, sim)
    valid = label_validity(cfg, plan, sim, vis)
    rng = np.random.default_rng([cfg.seed, plan.index, 13])
    ann = sim.annotated
    fn = sim.frame_numbers
    K = sim.intrinsics
    hand_json: dict[str, Any] = {}
    cam_json: dict[str, Any] = {}
    views = np.where(vis["visible"], rng.integers(3, 7, valid.shape), rng.integers(2, 4, valid.shape))
    for f in np.flatnonzero(ann):
        E = sim.extrinsics[f]
        Xc = sim.joints[f] @ E[:, :3].T + E[:, 3]
        a3, a2 = {}, {}
        for j in np.flatnonzero(valid[f]):
            name = skeleton.JOINT_NAMES[j]
            x, y, z = sim.joints[f, j]
            a3[name] = {"x": _r(x), "y": _r(y), "z": _r(z), "num_views_for_3d": int(views[f, j])}
            a2[name] = {"x": _r(K[0, 0] * Xc[j, 0] / Xc[j, 2] + K[0, 2]),
                        "y": _r(K[1, 1] * Xc[j, 1] / Xc[j, 2] + K[1, 2]), "placement": "auto"}
        hand_json[str(int(fn[f]))] = [{"annotation3D": a3, "annotation2D": {EGO_CAMERA: a2}}]
        cam_json[str(int(fn[f]))] = [[_r(v) for v in row] for row in E]
    split_dir = root / "annotations" / "ego_pose" / plan.split
    atomic_write_json(split_dir / "hand" / "annotation" / f"{plan.take_uid}.json", hand_json, indent=None)
    atomic_write_json(split_dir / "camera_pose" / f"{plan.take_uid}.json", {
        "metadata": {"take_uid": plan.take_uid, "take_name": plan.take_name, "generator": GENERATOR_VERSION},
        EGO_CAMERA: {"camera_intrinsics": [[_r(v) for v in row] for row in K], "camera_extrinsics": cam_json},
    }, indent=None)
    n_video = int(round(plan.duration * FPS))
    _write_video(root / "takes" / plan.take_name / VIDEO_RELPATH, vis["frames"], fn, n_video, cfg.crf)
    half = np.array([o.height / 2 for o in plan.objects])
    centers = sim.object_p + sim.object_R[..., :, 2] * half[None, :, None]
    gt_path = root / "egosynth" / "gt" / f"{plan.take_uid}.npz"
    with atomic_path(gt_path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, frame_numbers=fn[ann], joints=sim.joints[ann].astype(np.float32), valid=valid[ann],
                in_view=vis["in_view"][ann], visible=vis["visible"][ann],
                extrinsics=sim.extrinsics[ann].astype(np.float32), intrinsics=K.astype(np.float32),
                object_positions=sim.object_p[ann].astype(np.float32), object_centers=centers[ann].astype(np.float32),
                target_index=np.int64(plan.target),
                target_pixels=vis["target_pixels"][ann],
                hand_rgb=np.stack([plan.skin, plan.skin * LEFT_TINT]).astype(np.float32))
    ann_fn = fn[ann]
    take = {
        "take_uid": plan.take_uid,
        "take_name": plan.take_name,
        "parent_task_name": plan.parent_scenario,
        "task_name": plan.scenario,
        "root_dir": f"takes/{plan.take_name}",
        "duration_sec": _r(n_video / FPS),
        "best_exo": None,
        "capture": {"capture_name": plan.take_name, "university_name": "egosynth"},
        "frame_aligned_videos": {EGO_CAMERA: {"rgb": {"relative_path": VIDEO_RELPATH}}},
        "egosynth": {
            "prompt": plan.prompt, "task_family": plan.family, "target_object": plan.objects[plan.target].name,
            "destination_object": plan.objects[plan.dest].name if plan.dest is not None else None,
            "objects": [o.name for o in plan.objects], "egomotion_level": _r(plan.egomotion_level),
            "acting_hand": plan.acting_hand, "split": plan.split,
        },
    }
    return {"take": take, "runs": [(int(ann_fn[0]), int(ann_fn[-1]), len(ann_fn))]}


def _family_schedule(cfg: SynthConfig) -> list[tuple[int, str, str]]:
    """(index, split, family) of every take: families cycle within each split, so all splits see all tasks."""
    fams = list(cfg.families or FAMILIES)
    rng = np.random.default_rng([cfg.seed, 3])
    rng.shuffle(fams)
    out, index = [], 0
    for split in SPLITS:
        n = int(cfg.num_takes.get(split, 0))
        order = [fams[(index + i) % len(fams)] for i in range(n)]  # one round-robin across all splits
        rng.shuffle(order)
        for fam in order:
            out.append((index, split, fam))
            index += 1
    return out


def _generate_one(args) -> dict[str, Any]:
    root, cfg, index, split, family = args
    plan = plan_take(cfg, index, split, family)
    return _take_files(Path(root), cfg, plan)


def _manifest(cfg: SynthConfig, takes: list[dict]) -> dict[str, Any]:
    return {
        "generator": "egghand_lib.data.synthetic",
        "version": GENERATOR_VERSION,
        "preset": cfg.preset,
        "seed": cfg.seed,
        "config": json.loads(json.dumps(asdict(cfg))),
        "num_takes": len(takes),
        "takes": [{"take_uid": t["take_uid"], "take_name": t["take_name"], "split": t["egosynth"]["split"],
                   "task_family": t["egosynth"]["task_family"], "prompt": t["egosynth"]["prompt"]} for t in takes],
        "layout": "EgoExo4D (takes.json, annotations/splits.json, annotations/ego_pose/{split}/hand/annotation, "
                  "annotations/ego_pose/{split}/camera_pose, takes/<take_name>/frame_aligned_videos)",
    }


def _same_data(old_config: dict | None, cfg: SynthConfig) -> bool:
    """True if a stored config generates the same data as ``cfg`` (``workers`` does not change the data)."""
    if not isinstance(old_config, dict):
        return False
    new = json.loads(json.dumps(asdict(cfg)))
    return {k: v for k, v in old_config.items() if k != "workers"} == {k: v for k, v in new.items() if k != "workers"}


def generate_egosynth(out_dir: str | Path, preset: str = "tiny", seed: int = 0, overwrite: bool = False,
                      progress: bool = True, **overrides: Any) -> Path:
    """Generate an EgoSynth dataset in the EgoExo4D layout at ``out_dir`` and return its path.

    Deterministic from (preset, seed, overrides). If ``out_dir`` already holds a complete generation with
    the same parameters it is returned as is; any other existing folder needs ``overwrite=True``.
    """
    cfg = make_config(preset, seed, **overrides)
    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.json"
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        overwrite = True  # an empty folder (e.g. made by the user for it) holds nothing to protect
    if out_dir.exists() and not overwrite:
        if manifest_path.exists():
            try:
                old = json.loads(manifest_path.read_text())
            except json.JSONDecodeError:
                old = None
            if old is not None and old.get("version") == GENERATOR_VERSION and _same_data(old.get("config"), cfg):
                return out_dir
        raise FileExistsError(f"out_dir: {out_dir} already exists (and is not this very generation); "
                              "pass overwrite=True (CLI: --overwrite) to replace it")
    jobs = _family_schedule(cfg)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        args = [(str(tmp), cfg, i, split, fam) for i, split, fam in jobs]
        if cfg.workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=cfg.workers) as pool:
                results = list(_progress(pool.map(_generate_one, args), len(jobs), progress))
        else:
            results = list(_progress(map(_generate_one, args), len(jobs), progress))
        takes = [r["take"] for r in results]
        atomic_write_json(tmp / "takes.json", takes)
        t2s = {t["take_uid"]: t["egosynth"]["split"] for t in takes}
        atomic_write_json(tmp / "annotations" / "splits.json", {
            "take_uid_to_split": t2s,
            "split_to_take_uids": {s: [u for u, v in t2s.items() if v == s] for s in SPLITS},
        })
        for split in SPLITS:
            tasks = sorted({t["task_name"] for t in takes if t["egosynth"]["split"] == split})
            episodes = []
            for r in results:
                t = r["take"]
                if t["egosynth"]["split"] != split:
                    continue
                for start, end, length in r["runs"]:
                    episodes.append({"episode_index": len(episodes), "take_uid": t["take_uid"], "start_frame": start,
                                     "end_frame": end, "length": length, "task_index": tasks.index(t["task_name"]),
                                     "tasks": [t["egosynth"]["prompt"]]})
            atomic_write_json(tmp / "annotations" / "egghand_episodes" / f"{split}.json", {
                "tasks": [{"task_index": i, "task": name} for i, name in enumerate(tasks)], "episodes": episodes})
        atomic_write_json(tmp / "manifest.json", _manifest(cfg, takes))  # last: marks the folder complete
    return out_dir


def _progress(it, total: int, enabled: bool):
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc="egosynth takes", unit="take")


def load_ground_truth(root: str | Path, take_uid: str) -> dict[str, np.ndarray]:
    """The ground-truth arrays of one generated take (see the module docstring)."""
    path = Path(root) / "egosynth" / "gt" / f"{take_uid}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no EgoSynth ground truth for take {take_uid!r}")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
