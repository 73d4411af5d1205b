"""Tiny hand-made takes in the official EgoExo4D layout, with known answers, plus malformed variants.

Scene of every fixture take: the ego camera is level (looking horizontally), at height 1.5 m, heading
``yaw`` (radians, about +z), moving ``speed`` metres per 10 fps step along its heading and turning
``turn`` radians per step. The hands are rigid: each joint sits at a fixed camera-relative offset
(``HAND_OFFSETS``, OpenCV camera axes: +x right, +y down, +z forward), so its canonical coordinates
are known in closed form. Video frame i (30 fps index) has colour code ``frame_color(i)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from egghand_lib.geometry import look_at_extrinsics
from egghand_lib.skeleton import HAND_BONES, JOINT_NAMES

VIDEO_W, VIDEO_H = 64, 48  # not square: exercises the centre crop
FOCAL = 40.0
INTRINSICS = np.array([[FOCAL, 0, VIDEO_W / 2], [0, FOCAL, VIDEO_H / 2], [0, 0, 1]])


def _hand_shape() -> np.ndarray:
    """(21, 3) joint offsets of a right hand in the camera frame: wrist 0.4 m ahead, fingers 2 cm bones."""
    pts = np.zeros((21, 3))
    pts[0] = (0.15, 0.2, 0.4)
    for f in range(5):
        d = np.array([0.01 * (f - 2), -0.02, 0.0])
        for k in range(4):
            pts[1 + 4 * f + k] = pts[0] + (k + 1) * d + np.array([0, 0, 0.005 * k])
    return pts


HAND_OFFSETS = np.concatenate([_hand_shape(), _hand_shape() * np.array([-1, 1, 1])])  # (42, 3), left mirrored


def frame_color(i: int) -> tuple[int, int, int]:
    """Flat RGB colour of video frame i: robust to lossy coding (steps of 4 and 16)."""
    return ((i % 64) * 4, (i // 64) * 16 + 8, 128)


def decode_color(rgb) -> int:
    r, g = float(rgb[0]), float(rgb[1])
    return int(round(r / 4)) + 64 * int(round((g - 8) / 16))


def write_video(path: Path, num_frames: int, w: int = VIDEO_W, h: int = VIDEO_H) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.gop_size = 15
        s.options = {"crf": "10"}
        img = np.zeros((h, w, 3), np.uint8)
        for i in range(num_frames):
            img[:] = frame_color(i)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def camera_path(n: int, start=(0.0, 0.0), yaw0: float = 0.0, speed: float = 0.0, turn: float = 0.0) -> np.ndarray:
    """(n, 3, 4) world -> camera extrinsics of a level camera stepping along its heading."""
    out = np.zeros((n, 3, 4))
    pos = np.array([start[0], start[1], 1.5])
    yaw = yaw0
    for k in range(n):
        fwd = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        out[k] = look_at_extrinsics(pos, pos + fwd)
        pos = pos + speed * fwd
        yaw += turn
    return out


def hands_world(extrinsics: np.ndarray) -> np.ndarray:
    """(n, 42, 3) world joints at HAND_OFFSETS in each camera frame."""
    R, t = extrinsics[:, :, :3], extrinsics[:, :, 3]
    return np.einsum("nji,nkj->nki", R, HAND_OFFSETS[None] - t[:, None, :])  # R^T (x - t)


@dataclass
class FixtureTake:
    take_uid: str
    take_name: str
    split: str
    frames: np.ndarray  # (F,) 30 fps numbers of the annotated frames
    extrinsics: np.ndarray  # (F, 3, 4)
    joints: np.ndarray  # (F, 42, 3), NaN = joint absent
    task_name: str = "Cooking Noodles"
    parent_task_name: str = "Cooking"
    task_prompt: str | None = None
    video_frames: int | None = None  # default: last frame + 1
    camera_frames: np.ndarray | None = None  # frames that get extrinsics (default: all annotated)
    extra: dict = field(default_factory=dict)


def make_take(uid: str, split: str = "train", start: int = 0, n: int = 40, name: str | None = None,
              **motion) -> FixtureTake:
    """A clean take: n annotated frames start, start + 3, ...; camera and hands as in the module doc."""
    E = camera_path(n, **motion)
    return FixtureTake(uid, name or f"take_{uid}", split, start + 3 * np.arange(n), E, hands_world(E))


def hand_file_obj(take: FixtureTake) -> dict:
    obj = {}
    for fn, J in zip(take.frames, take.joints, strict=True):
        a3d = {}
        for j, name in enumerate(JOINT_NAMES):
            if np.isnan(J[j]).all():
                continue  # absent joint: the key is missing, as in EgoExo4D
            a3d[name] = {"x": float(J[j, 0]), "y": float(J[j, 1]), "z": float(J[j, 2]), "num_views_for_3d": 3}
        obj[str(int(fn))] = [{"annotation3D": a3d, "annotation2D": {}}]
    return obj


def camera_file_obj(take: FixtureTake) -> dict:
    keep = take.frames if take.camera_frames is None else take.camera_frames
    ext = {str(int(fn)): E.tolist() for fn, E in zip(take.frames, take.extrinsics, strict=True) if fn in set(keep)}
    return {"metadata": {"take_name": take.take_name},
            "aria01": {"camera_intrinsics": INTRINSICS.tolist(), "camera_extrinsics": ext},
            "cam01": {"camera_intrinsics": INTRINSICS.tolist(), "camera_extrinsics": {}}}


def write_dataset(root: Path, takes: list[FixtureTake], annotation: str = "annotation",
                  unlisted: tuple[str, ...] = (), video: bool = True) -> Path:
    """Write takes.json, splits.json, annotations and videos of ``takes`` under ``root``.

    unlisted: take uids whose annotation files are written but which takes.json does not list.
    """
    root = Path(root)
    entries = []
    for tk in takes:
        e = {"take_uid": tk.take_uid, "take_name": tk.take_name, "parent_task_name": tk.parent_task_name,
             "task_name": tk.task_name, "root_dir": f"takes/{tk.take_name}",
             "frame_aligned_videos": {
                 "aria01": {"rgb": {"relative_path": "frame_aligned_videos/aria01_214-1.mp4"}},
                 "cam01": {"0": {"relative_path": "frame_aligned_videos/cam01.mp4"}}},
             "some_extra_key": [1, 2]}
        if tk.task_prompt is not None:
            e["task_prompt"] = tk.task_prompt
        e.update(tk.extra)
        if tk.take_uid not in unlisted:
            entries.append(e)
        d = root / "annotations" / "ego_pose" / tk.split
        _write_json(d / "hand" / annotation / f"{tk.take_uid}.json", hand_file_obj(tk))
        _write_json(d / "camera_pose" / f"{tk.take_uid}.json", camera_file_obj(tk))
        if video:
            n = tk.video_frames if tk.video_frames is not None else int(tk.frames.max()) + 1
            write_video(root / "takes" / tk.take_name / "frame_aligned_videos" / "aria01_214-1.mp4", n)
    _write_json(root / "takes.json", entries)
    uid_split = {tk.take_uid: tk.split for tk in takes}
    by_split: dict[str, list[str]] = {}
    for u, s in uid_split.items():
        by_split.setdefault(s, []).append(u)
    _write_json(root / "annotations" / "splits.json", {"take_uid_to_split": uid_split, "split_to_take_uids": by_split})
    return root


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def hand_path(root: Path, tk: FixtureTake) -> Path:
    return Path(root) / "annotations" / "ego_pose" / tk.split / "hand" / "annotation" / f"{tk.take_uid}.json"


def camera_path_file(root: Path, tk: FixtureTake) -> Path:
    return Path(root) / "annotations" / "ego_pose" / tk.split / "camera_pose" / f"{tk.take_uid}.json"


def bone_lengths(J: np.ndarray) -> np.ndarray:
    p, c = np.array(HAND_BONES).T
    return np.linalg.norm(J[..., c, :] - J[..., p, :], axis=-1)
