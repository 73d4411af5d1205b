"""Validation of one take's hand and camera annotations, and the report of what was found.

Every check either *drops* something (a frame, a joint, a hand, a whole take) or is informational;
nothing is skipped silently: each finding is counted per take and kind, with examples (file, frame,
joint) in the report. ``strict=True`` turns the first problem into a ``ValidationError`` naming the
file and frame instead.

Kinds (severity ``problem`` drops data, ``info`` only describes it):

| kind | severity | what is dropped |
|---|---|---|
| take_not_in_takes_json | problem | the take (annotations exist, takes.json does not list it) |
| unsafe_path | problem | the take (its uid, split, root_dir or video path would leave the raw or output folder) |
| duplicate_take | problem | the take (listed twice in takes.json, or given two splits in splits.json) |
| file_error | problem | the take (missing/truncated JSON, wrong shapes, missing keys) |
| missing_video | problem | the take (no ego RGB video, or it is shorter than the annotations) |
| frame_number_out_of_range | problem | the frame (its key is not in 0 .. MAX_FRAME_NUMBER) |
| duplicate_key | problem | the frame (given more than once: the same key twice, "19" and "019", a joint twice) |
| missing_camera_pose | problem | the frame (annotated, but no extrinsics for it) |
| bad_extrinsics | problem | the frame (non-finite, non-rigid, beyond max_camera_translation, or a lone jump) |
| unknown_joint_name | problem | that joint entry (not an EgoExo4D hand joint name) |
| nan_joint | problem | the joint (NaN/inf or non-numeric coordinates) |
| joint_far_from_camera | problem | the joint (farther than max_camera_distance from the camera) |
| bone_length_outlier | problem | the child joint of the bone |
| too_few_hand_joints | problem | the hand in that frame (fewer than min_hand_joints valid joints) |
| no_valid_frames | problem | the take (nothing left) |
| frame_gap | info | nothing: episodes split at the gap |
| no_hand_annotation | info | nothing: a listed frame has camera pose but no hand annotation (all joints invalid) |
| fallback_automatic | info | nothing: no manual annotation file, automatic annotations used |
| not_annotated | info | nothing: a take of the split has no hand annotation file |
| episode_incomplete | info | an egghand episode lost frames (split into shorter episodes) |
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from egghand_lib.data.egoexo4d import CameraPose, HandAnnotation
from egghand_lib.geometry import camera_center
from egghand_lib.skeleton import BONES, JOINT_NAMES, JOINTS_PER_HAND, NUM_JOINTS

KINDS: dict[str, tuple[str, str]] = {
    "take_not_in_takes_json": ("problem", "annotations exist for a take that takes.json does not list; take dropped"),
    "unsafe_path": ("problem", "a take uid, split, root_dir or video path would leave the raw or output folder; "
                               "take dropped"),
    "duplicate_take": ("problem", "take uid listed twice in takes.json or given two splits in splits.json; "
                                  "take dropped"),
    "file_error": ("problem", "a file is missing, truncated or malformed; take dropped"),
    "missing_video": ("problem", "the ego RGB video is missing or too short; take dropped"),
    "frame_number_out_of_range": ("problem", "frame key outside 0 .. MAX_FRAME_NUMBER; frame dropped"),
    "duplicate_key": ("problem", "frame (or a joint of it) given more than once; frame dropped"),
    "missing_camera_pose": ("problem", "annotated frame without camera extrinsics; frame dropped"),
    "bad_extrinsics": ("problem", "non-finite, non-rigid, implausibly far or jumping extrinsics; frame dropped"),
    "unknown_joint_name": ("problem", "joint name that is not an EgoExo4D hand joint; entry ignored"),
    "nan_joint": ("problem", "NaN/inf or non-numeric joint coordinates; joint marked invalid"),
    "joint_far_from_camera": ("problem", "joint farther than max_camera_distance from the camera; joint invalid"),
    "bone_length_outlier": ("problem", "bone longer than max_bone_length or bone_ratio x the take's median; "
                                       "child joint invalid"),
    "too_few_hand_joints": ("problem", "hand with fewer than min_hand_joints valid joints; hand invalid in that frame"),
    "no_valid_frames": ("problem", "no frame left after validation; take dropped"),
    "frame_gap": ("info", "consecutive annotated frames not 3 apart; episodes split there"),
    "no_hand_annotation": ("info", "listed frame with camera pose but no hand annotation; all joints invalid"),
    "fallback_automatic": ("info", "no manual annotation file; automatic annotations used"),
    "not_annotated": ("info", "take of the split without a hand annotation file; not used"),
    "episode_incomplete": ("info", "a listed egghand episode lost frames and was split"),
}
MAX_EXAMPLES = 20  # examples kept per (take, kind); counts are always complete


class ValidationError(ValueError):
    """A problem found in strict mode; the message names the file and frame."""


@dataclass
class ValidationConfig:
    strict: bool = False
    max_camera_distance: float = 2.0  # metres from the ego camera centre; hands are within arm's reach
    min_hand_joints: int = 3  # a hand with 1..min_hand_joints-1 valid joints is dropped in that frame
    max_bone_length: float = 0.25  # metres; the longest hand bone (wrist -> index_1) is about 0.1 m
    bone_ratio: float = 2.5  # a bone longer than bone_ratio x its median over the take is an outlier
    max_camera_translation: float = 100.0  # metres: the camera's distance from the world origin (|t| of [R|t])
    max_camera_speed: float = 10.0  # m/s: a frame whose camera is this fast away from both neighbours jumped


@dataclass
class TakeReport:
    take_uid: str
    status: str = "ok"  # "ok" or "dropped"
    frames_in: int = 0
    frames_kept: int = 0
    joints_valid: int = 0
    episodes: int = 0
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[dict]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"take_uid": self.take_uid, "status": self.status, "frames_in": self.frames_in,
                "frames_kept": self.frames_kept, "joints_valid": self.joints_valid, "episodes": self.episodes,
                "counts": dict(sorted(self.counts.items())), "examples": self.examples}


class ValidationReport:
    """Findings of all takes. ``add`` records one finding and raises in strict mode for problems."""

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.takes: dict[str, TakeReport] = {}

    def take(self, take_uid: str) -> TakeReport:
        if take_uid not in self.takes:
            self.takes[take_uid] = TakeReport(take_uid)
        return self.takes[take_uid]

    def add(self, take_uid: str, kind: str, file: str | Path | None = None, frame: int | None = None,
            detail: str = "", count: int = 1) -> None:
        if kind not in KINDS:
            raise KeyError(f"unknown validation kind {kind!r}")
        severity, what = KINDS[kind]
        if self.strict and severity == "problem":
            where = (f"{file}: " if file else "") + (f"frame {frame}: " if frame is not None else "")
            raise ValidationError(f"{where}{kind}: {detail or what} (take {take_uid})")
        tr = self.take(take_uid)
        tr.counts[kind] += count
        ex = tr.examples.setdefault(kind, [])
        if len(ex) < MAX_EXAMPLES:
            ex.append({k: v for k, v in (("file", str(file) if file else None), ("frame", frame),
                                         ("detail", detail), ("count", count if count != 1 else None))
                       if v not in (None, "")})

    def drop_take(self, take_uid: str, kind: str, file: str | Path | None, detail: str) -> None:
        self.add(take_uid, kind, file=file, detail=detail)
        tr = self.take(take_uid)
        tr.status, tr.frames_kept, tr.joints_valid, tr.episodes = "dropped", 0, 0, 0

    # ------------------------------------------------------------------------------------ output

    def totals(self) -> dict[str, int]:
        c: Counter = Counter()
        for tr in self.takes.values():
            c.update(tr.counts)
        return dict(sorted(c.items()))

    def to_json(self) -> dict:
        takes = list(self.takes.values())
        return {
            "strict": self.strict,
            "kinds": {k: {"severity": s, "meaning": m} for k, (s, m) in KINDS.items()},
            "summary": {
                "takes": sum(t.status != "not used" for t in takes), "takes_ok": sum(t.status == "ok" for t in takes),
                "takes_dropped": sum(t.status == "dropped" for t in takes),
                "frames_in": sum(t.frames_in for t in takes), "frames_kept": sum(t.frames_kept for t in takes),
                "episodes": sum(t.episodes for t in takes), "counts": self.totals(),
            },
            "takes": {uid: t.to_json() for uid, t in sorted(self.takes.items())},
        }

    def to_markdown(self) -> str:
        j = self.to_json()
        s = j["summary"]
        lines = [
            "# Validation report", "",
            f"Mode: {'strict' if self.strict else 'lenient'}. Takes: {s['takes']} ({s['takes_ok']} used, "
            f"{s['takes_dropped']} dropped). Frames: {s['frames_kept']} kept of {s['frames_in']}. "
            f"Episodes: {s['episodes']}.", "",
            "## Findings (all takes)", "", "| kind | severity | count | meaning |", "|---|---|---:|---|",
        ]
        for kind, n in s["counts"].items():
            lines.append(f"| {kind} | {KINDS[kind][0]} | {n} | {KINDS[kind][1]} |")
        if not s["counts"]:
            lines.append("| (none) | | 0 | |")
        lines += ["", "## Per take", "", "| take | status | frames kept / in | episodes | findings |",
                  "|---|---|---:|---:|---|"]
        for uid, t in j["takes"].items():
            found = ", ".join(f"{k} {n}" for k, n in t["counts"].items()) or "-"
            kept = f"{t['frames_kept']} / {t['frames_in']}"
            lines.append(f"| {uid} | {t['status']} | {kept} | {t['episodes']} | {found} |")
        lines += ["", "## Examples", ""]
        for uid, t in j["takes"].items():
            for kind, exs in t["examples"].items():
                for e in exs[:5]:
                    where = e.get("file", "")
                    if "frame" in e:
                        where += f" frame {e['frame']}"
                    lines.append(f"- {uid} {kind}: {where} {e.get('detail', '')}".rstrip())
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- checks


@dataclass
class CleanTake:
    """Validated frames of one take: frame_numbers (F,), joints (F, 42, 3) float32 (0 where invalid),
    valid (F, 42) bool, extrinsics (F, 3, 4) float32 world -> camera, intrinsics (3, 3) (native video)."""

    take_uid: str
    frame_numbers: np.ndarray
    joints: np.ndarray
    valid: np.ndarray
    extrinsics: np.ndarray
    intrinsics: np.ndarray
    meta: dict = field(default_factory=dict)


def _extrinsics_problems(E: np.ndarray, max_translation: float, tol: float = 1e-3) -> list[str | None]:
    """(N, 3, 4) world -> camera -> per frame None (fine) or why not: non-finite, a rotation that is not
    orthonormal with determinant +1, or a translation (the camera's distance from the world origin) beyond
    ``max_translation`` metres."""
    finite = np.isfinite(E).all(axis=(1, 2))
    safe = np.where(finite[:, None, None], E, np.eye(3, 4))
    R, t = safe[:, :, :3], safe[:, :, 3]
    with np.errstate(over="ignore", invalid="ignore"):  # huge finite entries overflow to inf: not rigid either
        ortho = np.abs(R @ R.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2)) < tol
        proper = np.linalg.det(np.where(ortho[:, None, None], R, np.eye(3))) > 0
        dist = np.linalg.norm(t, axis=1)
    out: list[str | None] = []
    for i in range(len(E)):
        if not finite[i]:
            out.append("NaN or inf in the 3x4 matrix")
        elif not (ortho[i] and proper[i]):
            out.append("rotation part not orthonormal with determinant +1")
        elif not dist[i] <= max_translation:
            out.append(f"translation {dist[i]:.4g} m from the world origin (> max_camera_translation "
                       f"{max_translation:g} m)")
        else:
            out.append(None)
    return out


def _camera_jumps(frames: np.ndarray, centres: np.ndarray, max_speed: float, fps: float = 30.0) -> np.ndarray:
    """(F,) bool: frames whose camera centre is farther from both neighbours than ``max_speed`` allows (an
    isolated jump; at an end, from its one neighbour while that neighbour agrees with its own next one)."""
    n = len(frames)
    jump = np.zeros(n, bool)
    if n < 3:
        return jump
    step = np.linalg.norm(np.diff(centres, axis=0), axis=1)  # (F-1,) metres between consecutive frames
    too_far = step > max_speed * np.diff(frames) / fps
    jump[1:-1] = too_far[:-1] & too_far[1:]
    jump[0] = too_far[0] and not too_far[1]
    jump[-1] = too_far[-1] and not too_far[-2]
    return jump


def _masked_median(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-column median of ``x`` (F, B) over the rows where ``mask``; inf for a column with none.

    One sort for all columns instead of an ``np.median`` call per column (the per-call overhead dominated
    validation); the same values as ``np.median``: the middle element, or the mean of the two middle ones.
    """
    s = np.sort(np.where(mask, x, np.inf), axis=0)  # masked-out entries sort last
    k = mask.sum(axis=0)
    cols = np.arange(x.shape[1])
    lo, hi = np.maximum((k - 1) // 2, 0), k // 2
    return (s[lo, cols] + s[hi, cols]) / 2  # k // 2 < F: in range


def validate_take(
    take_uid: str,
    ann: HandAnnotation | None,
    cam: CameraPose,
    report: ValidationReport,
    config: ValidationConfig | None = None,
    frame_numbers: np.ndarray | None = None,
) -> CleanTake | None:
    """Check one take and return its valid frames, or None if nothing is left (recorded in ``report``).

    frame_numbers: the frames wanted (default: every annotated frame). Frames listed but not annotated
    keep all joints invalid (info ``no_hand_annotation``); frames without camera pose are dropped.
    """
    cfg = config or ValidationConfig()
    tr = report.take(take_uid)
    ann_file = ann.path if ann is not None else None
    for name, n in sorted((ann.unknown_joints if ann else {}).items()):
        report.add(take_uid, "unknown_joint_name", ann_file, detail=f"{name!r} ({n} entries)", count=n)

    frames = np.unique(ann.frame_numbers if frame_numbers is None else np.asarray(frame_numbers, np.int64))
    tr.frames_in += len(frames)

    # Joints of the wanted frames (NaN = absent).
    joints = np.full((len(frames), NUM_JOINTS, 3), np.nan)
    if ann is not None and len(ann.frame_numbers):
        pos = np.searchsorted(ann.frame_numbers, frames)
        pos_c = np.minimum(pos, len(ann.frame_numbers) - 1)
        has_ann = ann.frame_numbers[pos_c] == frames
        joints[has_ann] = ann.joints[pos_c[has_ann]]
    else:
        has_ann = np.zeros(len(frames), bool)
    if frame_numbers is not None and (~has_ann).any():
        f0 = int(frames[~has_ann][0])
        report.add(take_uid, "no_hand_annotation", ann_file, frame=f0,
                   detail=f"{int((~has_ann).sum())} listed frames without hand annotation", count=int((~has_ann).sum()))
    wanted = set(frames.tolist())
    for fn, name, why in (ann.bad_values if ann else []):
        if fn in wanted:
            report.add(take_uid, "nan_joint", ann_file, frame=fn, detail=f"{name}: {why}")
    # Frame keys out of range or given twice: those frames were left out by the reader (never resolved).
    for source, file in ((ann, ann_file), (cam, cam.path)):
        for fn, kind, detail in (source.bad_frames if source is not None else []):
            if fn is None or frame_numbers is None or fn in wanted:
                report.add(take_uid, kind, file, frame=fn, detail=detail)
    cam_listed = {fn for fn, _, _ in cam.bad_frames if fn is not None}

    # Camera pose: frames without it are dropped.
    found, E = cam.lookup(frames)
    for fn in frames[~found]:
        if int(fn) not in cam_listed:  # already reported as a duplicate key
            report.add(take_uid, "missing_camera_pose", cam.path, frame=int(fn), detail="no extrinsics for this frame")
    ok = found.copy()
    for i, why in enumerate(_extrinsics_problems(np.where(found[:, None, None], E, np.eye(3, 4)),
                                                 cfg.max_camera_translation)):
        if found[i] and why is not None:
            report.add(take_uid, "bad_extrinsics", cam.path, frame=int(frames[i]), detail=why)
            ok[i] = False
    idx = np.flatnonzero(ok)
    jumps = _camera_jumps(frames[idx], camera_center(E[idx]), cfg.max_camera_speed)
    for i in idx[jumps]:
        report.add(take_uid, "bad_extrinsics", cam.path, frame=int(frames[i]),
                   detail=f"camera jumps away from both neighbouring frames (faster than max_camera_speed "
                          f"{cfg.max_camera_speed:g} m/s)")
    ok[idx[jumps]] = False
    frames, joints, E = frames[ok], joints[ok], E[ok]
    valid = np.isfinite(joints).all(-1)

    # Joints far from the camera.
    if len(frames):
        with np.errstate(over="ignore"):  # a 1e300 coordinate is just far (inf)
            dist = np.linalg.norm(joints - camera_center(E)[:, None, :], axis=-1)
        far = valid & (dist > cfg.max_camera_distance)
        for i, j in zip(*np.nonzero(far), strict=True):
            report.add(take_uid, "joint_far_from_camera", ann_file, frame=int(frames[i]),
                       detail=f"{JOINT_NAMES[j]} {dist[i, j]:.2f} m from the camera")
        valid &= ~far

        # Bone-length outliers, against absolute and per-take median bounds; the child joint is dropped.
        par, chi = np.array(BONES).T
        with np.errstate(over="ignore", invalid="ignore"):
            length = np.linalg.norm(joints[:, chi] - joints[:, par], axis=-1)  # (F, 40)
        both = valid[:, par] & valid[:, chi]
        med = _masked_median(length, both)
        out = both & ((length > cfg.max_bone_length) | (length > cfg.bone_ratio * med))
        for i, b in zip(*np.nonzero(out), strict=True):
            report.add(take_uid, "bone_length_outlier", ann_file, frame=int(frames[i]),
                       detail=f"{JOINT_NAMES[par[b]]}->{JOINT_NAMES[chi[b]]} {length[i, b] * 100:.1f} cm "
                              f"(take median {med[b] * 100:.1f} cm)")
            valid[i, chi[b]] = False

        # Hands with too few valid joints.
        per_hand = valid.reshape(len(frames), 2, JOINTS_PER_HAND)
        n = per_hand.sum(-1)
        few = (n > 0) & (n < cfg.min_hand_joints)
        for i, h in zip(*np.nonzero(few), strict=True):
            report.add(take_uid, "too_few_hand_joints", ann_file, frame=int(frames[i]),
                       detail=f"{('right', 'left')[h]} hand has {n[i, h]} valid joints (< {cfg.min_hand_joints})")
            per_hand[i, h] = False
        valid = per_hand.reshape(len(frames), NUM_JOINTS)

    # Gaps between kept frames: informational, episodes split there.
    steps = np.diff(frames)
    for k in np.nonzero(steps != 3)[0]:
        report.add(take_uid, "frame_gap", ann_file or cam.path, frame=int(frames[k + 1]),
                   detail=f"{int(steps[k])} frames after {int(frames[k])} (expected 3)")

    tr.frames_kept += len(frames)
    tr.joints_valid += int(valid.sum())
    if len(frames) == 0:
        report.drop_take(take_uid, "no_valid_frames", ann_file or cam.path, "no frame left after validation")
        return None
    joints = np.where(valid[..., None], joints, 0.0).astype(np.float32)
    return CleanTake(take_uid, frames, joints, valid, E.astype(np.float32), cam.intrinsics.astype(np.float32))
