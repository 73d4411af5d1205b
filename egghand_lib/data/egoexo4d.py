"""Reader for files in the EgoExo4D layout (the real dataset or EgoSynth output).

Layout under ROOT (only the parts the hand-forecasting task needs)::

    takes.json                                              list of takes (uid, name, task, videos)
    annotations/splits.json                                 {"take_uid_to_split", "split_to_take_uids"}
    annotations/ego_pose/{split}/hand/annotation/{uid}.json manual 3D hand joints per 30 fps frame
    annotations/ego_pose/{split}/hand/automatic/{uid}.json  automatic 3D hand joints
    annotations/ego_pose/{split}/camera_pose/{uid}.json     intrinsics + per-frame world->camera extrinsics
    takes/{take_name}/frame_aligned_videos/aria01_214-1.mp4 ego RGB video, 30 fps

Everything here is raw reading: values come back as found (NaN where a joint is absent) and problems
with the *content* are left to ``egghand_lib.data.validation``. Problems with the *form* of a file
(truncated JSON, wrong shapes, missing keys) raise ``ValueError`` naming the file. Problems of a frame key
(a number outside 0 .. MAX_FRAME_NUMBER, or one frame given more than once: the same key twice, or "19" and
"019") are listed on the returned object (``bad_frames``) and the frame is left out: nothing is resolved
silently. Identifiers that become paths (take uid, take name, root_dir, the video's relative path) are
checked by ``read_takes``: a take whose paths would leave the raw folder, or a take uid listed twice, is
listed with its problem in ``TakeInfo.problems`` and never read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import chain
from operator import itemgetter
from pathlib import Path

import numpy as np

try:  # orjson decodes the big annotation files ~3x faster than the standard library; optional
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    orjson = None

from egghand_lib.io import escaping_path_reason, short_repr, unsafe_name_reason
from egghand_lib.skeleton import JOINT_NAMES, NUM_JOINTS

ANNOTATION_DIRS = {"manual": "annotation", "automatic": "automatic"}
_JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}
# 30 fps frame numbers are 0 .. MAX_FRAME_NUMBER (about 38 days of video): anything else is not a frame.
MAX_FRAME_NUMBER = 10**8


def load_json(path: str | Path):
    """Parse a JSON file, with errors that name the file (missing, truncated or not JSON)."""
    return _load_json_bytes(Path(path))[1]


def _load_json_bytes(path: Path) -> tuple[bytes, object]:
    """(the file's bytes, the parsed JSON), errors naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    data = path.read_bytes()
    if orjson is not None:
        try:
            return data, orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the standard library also accepts NaN / Infinity, which Python's json.dump writes
    try:
        return data, json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: not valid JSON (truncated or corrupt?): {e}") from None


class _Duplicates(dict):
    """A JSON object that held some key more than once (``duplicates``; the value kept is the last one)."""

    duplicates: list[str]


def _noting_duplicates(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: set[str] = set()
    marked = _Duplicates(out)
    marked.duplicates = sorted({k for k, _ in pairs if k in seen or seen.add(k)})
    return marked


def _load_json_noting_duplicates(data: bytes, path: Path):
    """The slow, exact parse: every object that held a key twice is a ``_Duplicates`` naming those keys."""
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_noting_duplicates)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: not valid JSON (truncated or corrupt?): {e}") from None


def _duplicate_keys(obj) -> list[str]:
    return list(getattr(obj, "duplicates", ()))


# --------------------------------------------------------------------------------------------- takes


@dataclass
class TakeInfo:
    """One entry of takes.json, reduced to what the pipeline needs."""

    take_uid: str
    take_name: str
    task_name: str  # EgoExo4D task, e.g. "Cooking Noodles" (the "scenario" of a window)
    parent_task_name: str
    ego_camera: str  # e.g. "aria01"
    video_relpath: str | None  # relative to the take's root_dir
    root_dir: str
    prompt: str  # "task_prompt", else EgoSynth's "egosynth"/"prompt", else the task name
    # (kind, detail) of what makes the take unusable: "unsafe_path" (a path that would leave the raw folder)
    # or "duplicate_take" (its uid is listed more than once); such a take is never read.
    problems: list[tuple[str, str]] = field(default_factory=list)

    def video_path(self, root: str | Path) -> Path | None:
        if self.video_relpath is None:
            return None
        return Path(root) / self.root_dir / self.video_relpath


def _ego_camera(videos: dict) -> str | None:
    arias = sorted(k for k in videos if str(k).lower().startswith("aria"))
    return arias[0] if arias else None


def _video_relpath(entry) -> str | None:
    """The ego RGB stream's relative path in a frame_aligned_videos camera entry (lenient about its form)."""
    if isinstance(entry, str):
        return entry
    if not isinstance(entry, dict):
        return None
    for key in ("rgb", "214-1"):
        sub = entry.get(key)
        if isinstance(sub, dict) and isinstance(sub.get("relative_path"), str):
            return sub["relative_path"]
    if isinstance(entry.get("relative_path"), str):
        return entry["relative_path"]
    return None


def read_takes(root: str | Path) -> dict[str, TakeInfo]:
    """ROOT/takes.json -> {take_uid: TakeInfo}. Extra keys are ignored.

    A take uid listed more than once keeps its first entry and gets a "duplicate_take" problem (which entry is
    right cannot be known); a uid that is not a plain file name, or a take name / root_dir / video path that
    would leave ROOT, gets an "unsafe_path" problem (``TakeInfo.problems``).
    """
    path = Path(root) / "takes.json"
    data = load_json(path)
    if isinstance(data, dict) and "takes" in data:
        data = data["takes"]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of takes, got {type(data).__name__}")
    out: dict[str, TakeInfo] = {}
    entries: dict[str, list[int]] = {}
    for i, t in enumerate(data):
        if not isinstance(t, dict) or "take_uid" not in t:
            raise ValueError(f"{path}: entry {i} has no 'take_uid'")
        uid = str(t["take_uid"])
        entries.setdefault(uid, []).append(i)
        if uid in out:
            continue
        name = str(t.get("take_name", uid))
        videos = t.get("frame_aligned_videos") or {}
        cam = _ego_camera(videos) if isinstance(videos, dict) else None
        rel = _video_relpath(videos.get(cam)) if cam else None
        if rel is not None and not rel.startswith("frame_aligned_videos") and "/" not in rel:
            rel = f"frame_aligned_videos/{rel}"
        task_name = str(t.get("task_name") or t.get("parent_task_name") or "")
        # Prompt: an explicit "task_prompt", else EgoSynth's "egosynth": {"prompt"}, else the task name.
        synth = t.get("egosynth") if isinstance(t.get("egosynth"), dict) else {}
        prompt = t.get("task_prompt") or synth.get("prompt") or task_name
        root_dir = str(t.get("root_dir") or f"takes/{name}")
        info = TakeInfo(
            take_uid=uid, take_name=name, task_name=task_name, parent_task_name=str(t.get("parent_task_name", "")),
            ego_camera=cam or "aria01", video_relpath=rel, root_dir=root_dir, prompt=str(prompt),
        )
        if (why := unsafe_name_reason(uid)) is not None:
            info.problems.append(("unsafe_path", f"entry {i}: take_uid {short_repr(uid)} is not a plain name ({why})"))
        for what, rp in (("root_dir", root_dir), ("root_dir + video path", f"{root_dir}/{rel}" if rel else None)):
            if rp is not None and (why := escaping_path_reason(rp)) is not None:
                info.problems.append(("unsafe_path", f"entry {i}: {what} {short_repr(rp)} {why} (outside {root})"))
                break
        out[uid] = info
    for uid, idx in entries.items():
        if len(idx) > 1:
            out[uid].problems.append(("duplicate_take", f"take_uid listed {len(idx)} times (entries "
                                                        f"{', '.join(map(str, idx[:5]))}); which one holds its "
                                                        "videos is unknown"))
    return out


def read_splits(root: str | Path) -> dict[str, str]:
    """ROOT/annotations/splits.json -> {take_uid: split} (a take given two splits: ``read_splits_checked``)."""
    return read_splits_checked(root)[0]


def read_splits_checked(root: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """({take_uid: split}, {take_uid: what conflicts}) of ROOT/annotations/splits.json: a take given more than
    one split (by either of its two forms), or listed twice, is a conflict (which is right is unknown)."""
    path = Path(root) / "annotations" / "splits.json"
    raw, _ = _load_json_bytes(path)
    data = _load_json_noting_duplicates(raw, path)  # a small file: read exactly, noting keys given twice
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected 'take_uid_to_split' or 'split_to_take_uids'")
    by_map = data.get("take_uid_to_split")
    by_list = data.get("split_to_take_uids")
    if not isinstance(by_map, dict) and not isinstance(by_list, dict):
        raise ValueError(f"{path}: expected 'take_uid_to_split' or 'split_to_take_uids'")
    splits_of: dict[str, set[str]] = {}  # every split a take is given, by either form
    listed: dict[str, int] = {}  # how often split_to_take_uids lists it
    for split, uids in by_list.items() if isinstance(by_list, dict) else ():
        if not isinstance(uids, list):
            raise ValueError(f"{path}: split_to_take_uids.{split}: expected a list of take uids")
        for u in map(str, uids):
            splits_of.setdefault(u, set()).add(str(split))
            listed[u] = listed.get(u, 0) + 1
    if isinstance(by_map, dict):
        mapping = {str(k): str(v) for k, v in by_map.items()}
    else:
        mapping = {}
        for split, uids in by_list.items():
            for u in map(str, uids):
                mapping.setdefault(u, str(split))
    for u, split in mapping.items():
        splits_of.setdefault(u, set()).add(split)
    twice = set(_duplicate_keys(by_map)) if isinstance(by_map, dict) else set()
    conflicts = {}
    for u, splits in splits_of.items():
        if len(splits) > 1:
            conflicts[u] = f"given the splits {sorted(splits)}"
        elif u in twice:
            conflicts[u] = "listed twice in take_uid_to_split"
        elif listed.get(u, 0) > 1:
            conflicts[u] = f"listed {listed[u]} times in split_to_take_uids"
    return mapping, conflicts


def annotation_path(root: str | Path, split: str, take_uid: str, kind: str = "manual") -> Path:
    if kind not in ANNOTATION_DIRS:
        raise ValueError(f"annotation kind: unknown {kind!r}; expected one of {sorted(ANNOTATION_DIRS)}")
    return Path(root) / "annotations" / "ego_pose" / split / "hand" / ANNOTATION_DIRS[kind] / f"{take_uid}.json"


def camera_pose_path(root: str | Path, split: str, take_uid: str) -> Path:
    return Path(root) / "annotations" / "ego_pose" / split / "camera_pose" / f"{take_uid}.json"


def annotated_take_uids(root: str | Path, split: str, kind: str = "manual") -> list[str]:
    """Take uids that have a hand annotation file of ``kind`` in ``split``, sorted."""
    folder = annotation_path(root, split, "x", kind).parent
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


# ------------------------------------------------------------------------------------ hand annotation


@dataclass
class HandAnnotation:
    """3D hand joints of one take as found in the file.

    frame_numbers (F,) int64 sorted 30 fps frame numbers; joints (F, 42, 3) float64 world metres with NaN
    where a joint is absent; num_views (F, 42) int16 (-1 when not given); unknown_joints {name: count}
    of joint names that are not EgoExo4D hand joints (they are ignored).
    """

    path: Path
    frame_numbers: np.ndarray
    joints: np.ndarray
    num_views: np.ndarray
    unknown_joints: dict[str, int] = field(default_factory=dict)
    bad_values: list[tuple[int, str, str]] = field(default_factory=list)  # (frame, joint, why): NaN / non-numeric
    # (frame number or None, kind, detail) of frames left out: "frame_number_out_of_range", "duplicate_key"
    bad_frames: list[tuple[int | None, str, str]] = field(default_factory=list)


def _parse_frame_number(key, path: Path) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: frame key {short_repr(str(key), 60)} is not an integer frame number") from None


def _frames_by_number(obj: dict, path: Path, skip: tuple[str, ...] = ()) -> tuple[list[tuple[int, object]], list]:
    """The entries of an object keyed by frame number: ([(frame number, value)] sorted, bad frames).

    A key that is not an integer is a form error (ValueError naming the file). A number outside 0 ..
    MAX_FRAME_NUMBER, and a frame given more than once (the same key twice, or "19" and "019") are left out
    and listed as (frame number or None, kind, detail).
    """
    twice = set(_duplicate_keys(obj))
    by_number: dict[int, list[str]] = {}
    values: dict[str, object] = {}
    bad: list[tuple[int | None, str, str]] = []
    for key, value in obj.items():
        if key in skip:
            continue
        text = str(key).strip().lstrip("+-")
        if text.isdigit() and len(text) > len(str(MAX_FRAME_NUMBER)):  # do not even convert 10^30 or 10^5000
            bad.append((None, "frame_number_out_of_range",
                        f"frame key {short_repr(str(key), 40)} is outside 0..{MAX_FRAME_NUMBER}; frame ignored"))
            continue
        fn = _parse_frame_number(key, path)
        if not 0 <= fn <= MAX_FRAME_NUMBER:
            bad.append((None, "frame_number_out_of_range",
                        f"frame key {short_repr(str(key), 40)} is outside 0..{MAX_FRAME_NUMBER}; frame ignored"))
            continue
        by_number.setdefault(fn, []).append(key)
        values[key] = value
    out = []
    for fn, keys in sorted(by_number.items()):
        if len(keys) > 1 or keys[0] in twice:
            given = " and ".join(repr(k) for k in keys) if len(keys) > 1 else f"{keys[0]!r} twice"
            bad.append((fn, "duplicate_key", f"frame {fn} is given more than once (keys {given}); frame dropped"))
            continue
        out.append((fn, values[keys[0]]))
    return out, bad


def _checked_joint_cells(i: int, fn: int, ann: dict, unknown: dict[str, int], bad: list) -> list[tuple]:
    """The cells of one frame's annotation3D, joint by joint: unknown names counted, values that are not
    numbers listed in ``bad`` (non-finite ones are left to the caller's vectorised check)."""
    out = []
    for name, p in ann.items():
        j = _JOINT_INDEX.get(name)
        if j is None:
            unknown[name] = unknown.get(name, 0) + 1
            continue
        try:
            x, y, z = float(p["x"]), float(p["y"]), float(p["z"])
            nv = p.get("num_views_for_3d")
            nv = -1 if nv is None or not math.isfinite(float(nv)) else int(nv)  # null / NaN / inf: not given
            out.append((i, j, x, y, z, nv))
        except (TypeError, KeyError, ValueError, AttributeError, OverflowError):  # overflow: a 400-digit number
            bad.append((fn, name, "non-numeric or incomplete x/y/z"))  # reported by validation
    return out


_FRAME_MATRIX = re.compile(rb'"\s*[+-]?\d+\s*"\s*:\s*\[')  # a frame-keyed matrix in a camera_pose file
_XYZ = itemgetter("x", "y", "z")
_XYZV = itemgetter("x", "y", "z", "num_views_for_3d")

# Both joint readers return, per annotated joint in file order: frame row (J,) int64, joint index (J,) int64,
# (x, y, z, num_views or -1) as float64 (J, 4) with NaN for null, and the raw x/y/z of joint r (to tell a
# null coordinate from a NaN one).
_JointValues = tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[int], tuple]]


def _joint_values_fast(anns: list[tuple[int, int, dict]]) -> _JointValues:
    """All joints of a well-formed file at once, iterating in C (map/itemgetter/chain/fromiter) rather than
    per joint in Python: about half the cost on the big files.

    Raises (KeyError, TypeError, AttributeError, ValueError, OverflowError) unless every joint has a known name
    and numeric x/y/z (and view count): the caller then takes ``_joint_values_checked``, which gives the same arrays for
    a well-formed file and names each problem of any other.
    """
    dicts = [ann for _, _, ann in anns]
    rows = np.repeat(np.fromiter((i for i, _, _ in anns), np.int64, len(anns)), list(map(len, dicts)))
    cols = np.fromiter(map(_JOINT_INDEX.__getitem__, chain.from_iterable(dicts)), np.int64, len(rows))
    points = list(chain.from_iterable(map(dict.values, dicts)))
    try:  # numpy reads numbers given as text like float() does, and None as NaN (told apart by the caller)
        v = np.fromiter(chain.from_iterable(map(_XYZV, points)), np.float64, 4 * len(points))
    except KeyError:  # some joint without a view count (optional) or without x/y/z (raises again here)
        quads = ((p["x"], p["y"], p["z"], p.get("num_views_for_3d", -1)) for p in points)
        v = np.fromiter(chain.from_iterable(quads), np.float64, 4 * len(points))
    return rows, cols, v.reshape(-1, 4), lambda r: _XYZ(points[r])


def _joint_values_checked(anns: list[tuple[int, int, dict]], unknown: dict[str, int], bad: list) -> _JointValues:
    """As ``_joint_values_fast``, frame by frame: a frame with an unknown name or a malformed joint goes joint
    by joint (``_checked_joint_cells`` counts unknown names in ``unknown`` and lists bad values in ``bad``)."""
    cells: list[tuple] = []
    for i, fn, ann in anns:
        try:
            cells += [(i, _JOINT_INDEX[name], p["x"], p["y"], p["z"], p.get("num_views_for_3d", -1))
                      for name, p in ann.items()]
        except (KeyError, TypeError, AttributeError):
            cells += _checked_joint_cells(i, fn, ann, unknown, bad)
    try:
        c = np.asarray(cells, dtype=np.float64).reshape(-1, 6)
    except (TypeError, ValueError, OverflowError):  # a value numpy cannot convert: check every joint one by one
        bad.clear()  # this pass lists every problem of the file again, in file order
        cells = [cell for i, fn, ann in anns for cell in _checked_joint_cells(i, fn, ann, {}, bad)]
        c = np.asarray(cells, dtype=np.float64).reshape(-1, 6)
    return c[:, 0].astype(np.int64), c[:, 1].astype(np.int64), c[:, 2:], lambda r: cells[r][2:5]


def read_hand_annotation(path: str | Path) -> HandAnnotation:
    """Parse one ego_pose hand annotation file: {"<frame>": [{"annotation3D": {joint: {x, y, z, ...}}}]}."""
    path = Path(path)
    raw, data = _load_json_bytes(path)
    anns, bad_frames, fnums = _hand_frames(data, path)
    # orjson keeps the last of two equal keys without a word. More "z" keys in the text than joints parsed means
    # a joint, or a frame holding joints, was given twice: parse again, exactly, noting every duplicate. (A frame
    # given twice with no joints in one copy loses nothing.)
    if raw.count(b'"z"') > sum(len(a) for _, _, a in anns):
        anns, bad_frames, fnums = _hand_frames(_load_json_noting_duplicates(raw, path), path)
    unknown: dict[str, int] = {}
    bad: list[tuple[int, str, str]] = []
    # Joints are converted and checked by numpy once per file (per-joint numpy calls would cost more than the
    # parsing); a file with any irregularity takes the frame-by-frame path that names each problem.
    try:
        rows, cols, v, raw_xyz = _joint_values_fast(anns)
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError):
        rows, cols, v, raw_xyz = _joint_values_checked(anns, unknown, bad)
    finite = np.isfinite(v[:, :3]).all(axis=1)
    for r in np.flatnonzero(~finite):  # stays NaN = missing, but is reported
        why = "non-numeric or incomplete x/y/z" if None in raw_xyz(r) else "NaN/inf coordinate"
        bad.append((int(fnums[int(rows[r])]), JOINT_NAMES[int(cols[r])], why))
    rows, cols, v = rows[finite], cols[finite], v[finite]
    v[~np.isfinite(v[:, 3]), 3] = -1  # a null (or NaN / inf) view count: not given
    joints = np.full((len(fnums), NUM_JOINTS, 3), np.nan)
    views = np.full((len(fnums), NUM_JOINTS), -1, dtype=np.int16)
    joints[rows, cols] = v[:, :3]  # (frame, joint) pairs are unique: a frame giving a joint twice was dropped
    views[rows, cols] = v[:, 3].astype(np.int16)
    return HandAnnotation(path, fnums, joints, views, unknown, bad, bad_frames)


def _hand_frames(data, path: Path) -> tuple[list[tuple[int, int, dict]], list, np.ndarray]:
    """A hand file's frames as (frame row, frame number, annotation3D), its bad frames and the frame numbers kept."""
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object keyed by frame number, got {type(data).__name__}")
    # Everything but a possible "metadata" entry is keyed by frame number.
    frames, bad_frames = _frames_by_number(data, path, skip=("metadata",))
    anns: list[tuple[int, int, dict]] = []  # (frame row, frame number, annotation3D)
    kept: list[int] = []
    for fn, entry in frames:
        # Real files hold a list with one dict per frame; accept a bare dict too.
        items = entry if isinstance(entry, list) else [entry]
        for item in items:
            if not isinstance(item, dict):
                raise ValueError(f"{path}: frame {fn}: expected a dict with 'annotation3D', got {type(item).__name__}")
            if not isinstance(item.get("annotation3D", {}), dict):
                raise ValueError(f"{path}: frame {fn}: 'annotation3D' is not an object")
        given = [item["annotation3D"] for item in items if "annotation3D" in item]
        # a joint given twice: the same key twice in one object (only the exact re-parse marks those), or in two
        twice = [k for a in given for k in getattr(a, "duplicates", ())]
        if len(given) > 1:
            twice = sorted(set(twice) | _repeated(k for a in given for k in a))
        if twice:
            bad_frames.append((fn, "duplicate_key", f"frame {fn}: joint(s) {', '.join(map(repr, twice[:5]))} given "
                                                    "more than once; frame dropped"))
            continue
        anns += [(len(kept), fn, a) for a in given] or [(len(kept), fn, {})]
        kept.append(fn)
    return anns, bad_frames, np.array(kept, dtype=np.int64)


def _repeated(keys) -> set:
    seen: set = set()
    return {k for k in keys if k in seen or seen.add(k)}


# ---------------------------------------------------------------------------------------- camera pose


@dataclass
class CameraPose:
    """One camera's poses: intrinsics (3, 3) at the video's native resolution; frame_numbers (M,) sorted;
    extrinsics (M, 3, 4) float64 world -> camera; frames whose key is out of range or given twice are left
    out and listed in ``bad_frames``."""

    path: Path
    camera: str
    intrinsics: np.ndarray
    frame_numbers: np.ndarray
    extrinsics: np.ndarray
    # (frame number or None, kind, detail) of frames left out, as HandAnnotation.bad_frames
    bad_frames: list[tuple[int | None, str, str]] = field(default_factory=list)

    def lookup(self, frame_numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Extrinsics at ``frame_numbers`` (N,) -> (found (N,) bool, extrinsics (N, 3, 4), NaN where not found)."""
        frame_numbers = np.asarray(frame_numbers, dtype=np.int64)
        pos = np.searchsorted(self.frame_numbers, frame_numbers)
        pos_c = np.minimum(pos, max(len(self.frame_numbers) - 1, 0))
        found = (
            (pos < len(self.frame_numbers)) & (self.frame_numbers[pos_c] == frame_numbers)
            if len(self.frame_numbers) else np.zeros(len(frame_numbers), bool)
        )
        out = np.full((len(frame_numbers), 3, 4), np.nan)
        if found.any():
            out[found] = self.extrinsics[pos_c[found]]
        return found, out


def _as_matrix(value, shape: tuple[int, int], path: Path, what: str) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {what}: not a numeric matrix") from None
    if m.shape == (4, 4) and shape == (3, 4):
        m = m[:3]
    if m.shape != shape:
        raise ValueError(f"{path}: {what}: expected shape {shape}, got {m.shape}")
    return m


def read_camera_pose(path: str | Path, camera: str | None = None) -> CameraPose:
    """Parse a camera_pose file; ``camera`` defaults to the first key starting with 'aria'."""
    path = Path(path)
    raw, data = _load_json_bytes(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object keyed by camera name")
    # orjson keeps the last of two equal keys silently: more frame-keyed matrices in the text than parsed means a
    # frame was given twice; parse again, exactly, noting the duplicates.
    parsed = sum(len(e["camera_extrinsics"]) for e in data.values()
                 if isinstance(e, dict) and isinstance(e.get("camera_extrinsics"), dict))
    if len(_FRAME_MATRIX.findall(raw)) > parsed:
        data = _load_json_noting_duplicates(raw, path)
    if camera is None or camera not in data:
        cams = sorted(k for k in data if str(k).lower().startswith("aria") and isinstance(data[k], dict))
        if not cams:
            raise ValueError(f"{path}: no ego (aria*) camera entry; keys are {sorted(data)[:10]}")
        camera = cams[0]
    entry = data[camera]
    if not isinstance(entry, dict) or "camera_extrinsics" not in entry or "camera_intrinsics" not in entry:
        raise ValueError(f"{path}: camera {camera!r} needs 'camera_intrinsics' and 'camera_extrinsics'")
    K = _as_matrix(entry["camera_intrinsics"], (3, 3), path, f"{camera}/camera_intrinsics")
    ext = entry["camera_extrinsics"]
    if not isinstance(ext, dict):
        raise ValueError(f"{path}: {camera}/camera_extrinsics: expected an object keyed by frame number")
    items, bad_frames = _frames_by_number(ext, path)
    try:  # all frames at once; on any irregularity, frame by frame to name the bad one
        A = np.asarray([v for _, v in items], dtype=np.float64)
    except (TypeError, ValueError):
        A = None
    if A is not None and A.ndim == 3 and A.shape[1:] in ((3, 4), (4, 4)):
        E = A[:, :3]
    else:
        E = np.zeros((len(items), 3, 4))
        for i, (fn, v) in enumerate(items):
            E[i] = _as_matrix(v, (3, 4), path, f"{camera}/camera_extrinsics/{fn}")
    return CameraPose(path, camera, K, np.array([f for f, _ in items], dtype=np.int64), E, bad_frames)


# ---------------------------------------------------------------------------------------------- video


def resize_intrinsics(K: np.ndarray, src_hw: tuple[int, int], size: int) -> np.ndarray:
    """Intrinsics after a short-side resize to ``size`` followed by a centre crop to size x size."""
    h, w = src_hw
    new_w, new_h = _resized_size(w, h, size)
    K = np.asarray(K, dtype=np.float64).copy()
    K[0, :] *= new_w / w
    K[1, :] *= new_h / h
    K[0, 2] -= (new_w - size) // 2
    K[1, 2] -= (new_h - size) // 2
    return K


def _resized_size(w: int, h: int, size: int) -> tuple[int, int]:
    s = size / min(h, w)
    return max(size, round(w * s)), max(size, round(h * s))


def video_info(path: str | Path) -> dict:
    """Width, height, fps and (if known) frame count of a video, from the container header only."""
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video not found")
    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            fps = float(s.average_rate or s.guessed_rate or 30)
            return {"width": s.codec_context.width, "height": s.codec_context.height, "fps": fps,
                    "frames": int(s.frames or 0)}
    except (av.error.FFmpegError, IndexError) as e:
        raise ValueError(f"{path}: cannot read video: {e}") from None


def read_video_frames(path: str | Path, frame_numbers, size: int = 224) -> np.ndarray:
    """Decode the frames with the given 30 fps frame numbers (video frame indices) -> (N, size, size, 3) uint8.

    Seeks to the keyframe before the first wanted frame and decodes forward only as far as the last
    one, so a short run of a long video costs little. Frames are short-side resized then centre-cropped.
    Raises ValueError naming the file if a wanted frame is not in the video.
    """
    import av

    path = Path(path)
    wanted = np.asarray(frame_numbers, dtype=np.int64)
    if wanted.size == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    order = np.argsort(wanted, kind="stable")
    sorted_wanted = wanted[order]
    out = np.zeros((len(wanted), size, size, 3), np.uint8)
    got = np.zeros(len(wanted), bool)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video not found")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate or stream.guessed_rate or 30)
        tb = stream.time_base
        start = stream.start_time or 0
        first = int(sorted_wanted[0])
        if first > 0:
            # Seek a little before the first wanted frame; the decoder lands on the keyframe before it.
            container.seek(int((first - 1) / rate / tb) + start, stream=stream, backward=True, any_frame=False)
        k = 0  # next position in sorted_wanted
        last = int(sorted_wanted[-1])
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            idx = int(round((frame.pts - start) * tb * rate))
            if idx < sorted_wanted[k]:
                continue
            if idx > last:
                break
            while k < len(sorted_wanted) and sorted_wanted[k] < idx:
                k += 1  # a wanted frame the stream skipped over: left missing, reported below
            if k < len(sorted_wanted) and sorted_wanted[k] == idx:
                img = _resize_crop(frame, size)
                while k < len(sorted_wanted) and sorted_wanted[k] == idx:
                    out[order[k]] = img
                    got[order[k]] = True
                    k += 1
            if k >= len(sorted_wanted):
                break
    if not got.all():
        missing = wanted[~got]
        raise ValueError(f"{path}: video has no frame {int(missing[0])} ({int((~got).sum())} wanted frames missing)")
    return out


def _resize_crop(frame, size: int) -> np.ndarray:
    new_w, new_h = _resized_size(frame.width, frame.height, size)
    img = frame.reformat(width=new_w, height=new_h, format="rgb24", interpolation="AREA").to_ndarray()
    y0, x0 = (new_h - size) // 2, (new_w - size) // 2
    return img[y0:y0 + size, x0:x0 + size]
