"""Episodes: contiguous 10 fps runs of validated frames of one take, and the paper's episode lists.

An episode's 30 fps frame numbers are exactly 3 apart. On a raw split ("train", "val", "test" as in
annotations/splits.json) the episodes of a take are the maximal such runs of its valid annotated
frames. On "egghand-train" / "egghand-val" they are exactly the paper's listed (take_uid,
start_frame, end_frame) ranges with their prompts (package data, see resources/egghand_splits).

Reading happens in two phases so that a strict run fails before anything is written and so that
video decoding (the slow part) can be resumed per take: ``plan_split`` reads and validates the JSON
annotations and returns episodes without frames; ``load_episode_frames`` decodes one episode's video.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from egghand_lib.data import egoexo4d as ex
from egghand_lib.data.validation import CleanTake, ValidationConfig, ValidationReport, validate_take
from egghand_lib.io import short_repr, unsafe_name_reason

FRAME_STRIDE = 3
EGGHAND_SPLITS = {"egghand-train": "train.json", "egghand-val": "val.json"}


@dataclass
class Episode:
    """One contiguous 10 fps run of one take (CONTRACTS.md "Prepared data").

    frame_numbers (F,) int64 30 fps numbers, consecutive ones exactly 3 apart; joints (F, 42, 3) float32
    world metres (0 where invalid); valid (F, 42) bool; extrinsics (F, 3, 4) float32 world -> camera;
    intrinsics (3, 3) float32 for the stored frames; frames (F, H, W, 3) uint8 RGB (None until decoded).
    """

    take_uid: str
    episode_index: int
    task: str
    scenario: str
    split: str
    frame_numbers: np.ndarray
    joints: np.ndarray
    valid: np.ndarray
    extrinsics: np.ndarray
    intrinsics: np.ndarray
    frames: np.ndarray | None = None
    video_path: str = ""  # source video, for decoding in the second phase
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame_numbers)

    @property
    def key(self) -> str:
        """File-name key, unique within a split: take uid and first frame number."""
        return f"{self.take_uid}_{int(self.frame_numbers[0]):07d}"


@dataclass
class EpisodeSpec:
    """One listed episode of the paper: frames start_frame, start_frame + 3, ..., end_frame."""

    episode_index: int
    take_uid: str
    start_frame: int
    end_frame: int
    task: str  # the one-sentence prompt
    scenario: str  # the EgoExo4D task name from the file's tasks table

    @property
    def frame_numbers(self) -> np.ndarray:
        return np.arange(self.start_frame, self.end_frame + 1, FRAME_STRIDE, dtype=np.int64)


def contiguous_runs(frame_numbers: np.ndarray, stride: int = FRAME_STRIDE) -> list[tuple[int, int]]:
    """Index ranges [start, stop) of maximal runs whose consecutive frame numbers are exactly ``stride`` apart."""
    f = np.asarray(frame_numbers)
    if f.size == 0:
        return []
    breaks = np.nonzero(np.diff(f) != stride)[0] + 1
    bounds = np.concatenate([[0], breaks, [f.size]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def load_egghand_split(name: str) -> list[EpisodeSpec]:
    """The paper's episodes of "egghand-train" (555) or "egghand-val" (109), from the package data."""
    if name not in EGGHAND_SPLITS:
        raise ValueError(f"split: unknown egghand split {name!r}; expected one of {sorted(EGGHAND_SPLITS)}")
    text = resources.files("egghand_lib").joinpath("resources", "egghand_splits", EGGHAND_SPLITS[name]).read_text()
    data = json.loads(text)
    tasks = {int(t["task_index"]): t["task"] for t in data["tasks"]}
    out = []
    for e in data["episodes"]:
        prompt = e["tasks"][0] if e.get("tasks") else tasks[int(e["task_index"])]
        out.append(EpisodeSpec(int(e["episode_index"]), e["take_uid"], int(e["start_frame"]), int(e["end_frame"]),
                               prompt, tasks[int(e["task_index"])]))
    return out


def is_egghand_split(split: str) -> bool:
    return split in EGGHAND_SPLITS


# --------------------------------------------------------------------------------------- planning


@dataclass
class RawIndex:
    """takes.json and splits.json of a raw folder, read once.

    ``problems``: take uid -> (kind, file, detail) of what makes a take unusable before any of its files is
    opened: a uid that is not a plain file name, a split (splits.json) or a root_dir / video path that would
    leave the raw folder ("unsafe_path"), a uid listed twice in takes.json or given two splits ("duplicate_take").
    """

    root: Path
    takes: dict[str, ex.TakeInfo]
    take_split: dict[str, str]
    problems: dict[str, tuple[str, Path, str]] = field(default_factory=dict)

    @classmethod
    def read(cls, root: str | Path) -> RawIndex:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"raw_dir: {root} is not a folder")
        takes = ex.read_takes(root)
        take_split, conflicts = ex.read_splits_checked(root)
        index = cls(root, takes, take_split)
        for uid, info in index.takes.items():
            if info.problems:
                index.problems[uid] = (info.problems[0][0], root / "takes.json", "; ".join(d for _, d in info.problems))
        splits_json = root / "annotations" / "splits.json"
        for uid, why in conflicts.items():
            index.problems.setdefault(uid, ("duplicate_take", splits_json, f"take {short_repr(uid)}: {why} in "
                                                                          "splits.json"))
        for uid, split in index.take_split.items():
            if uid not in index.problems and (why := take_uid_problem(uid) or split_name_problem(split)):
                index.problems[uid] = ("unsafe_path", splits_json, f"take {short_repr(uid)} in split "
                                                                   f"{short_repr(split)}: {why}")
        return index

    def problem(self, take_uid: str) -> tuple[str, Path, str] | None:
        """(kind, file, detail) when the take must not be read (see ``problems``), else None."""
        if take_uid in self.problems:
            return self.problems[take_uid]
        if (why := take_uid_problem(take_uid)) is not None:
            return "unsafe_path", self.root / "annotations", why
        return None

    def raw_split_of(self, take_uid: str, kind: str) -> str | None:
        """The ego_pose folder holding a take: from splits.json, else any folder with its annotation file."""
        if take_uid in self.take_split:
            return self.take_split[take_uid]
        for d in sorted((self.root / "annotations" / "ego_pose").glob("*")):
            if ex.annotation_path(self.root, d.name, take_uid, kind).is_file():
                return d.name
        return None


def take_uid_problem(take_uid: str) -> str | None:
    """Why a take uid cannot name its annotation and episode files, or None (``egghand_lib.io.unsafe_name_reason``)."""
    why = unsafe_name_reason(take_uid)
    return None if why is None else f"take uid {short_repr(take_uid)} is not a plain file name ({why})"


def split_name_problem(split: str) -> str | None:
    """Why a split name cannot name a folder, or None."""
    why = unsafe_name_reason(split)
    return None if why is None else f"split {short_repr(split)} is not a plain folder name ({why})"


def _read_take(index: RawIndex, take_uid: str, raw_split: str, annotation: str, report: ValidationReport,
               config: ValidationConfig, frame_numbers: np.ndarray | None) -> CleanTake | None:
    """Read + validate one take's JSON files; None (recorded in the report) if the take is unusable."""
    root = index.root
    if (problem := index.problem(take_uid)) is not None:  # before any path is built from its names
        report.drop_take(take_uid, *problem)
        return None
    path = ex.annotation_path(root, raw_split, take_uid, annotation)
    if not path.is_file() and annotation == "manual":
        auto = ex.annotation_path(root, raw_split, take_uid, "automatic")
        if auto.is_file():
            report.add(take_uid, "fallback_automatic", auto, detail="no manual annotation file")
            path = auto
    if take_uid not in index.takes:
        report.drop_take(take_uid, "take_not_in_takes_json", root / "takes.json",
                         f"take {take_uid} has annotations ({path.name}) but is not listed")
        return None
    info = index.takes[take_uid]
    try:
        ann = ex.read_hand_annotation(path)
        cam = ex.read_camera_pose(ex.camera_pose_path(root, raw_split, take_uid), info.ego_camera)
    except (FileNotFoundError, ValueError) as e:
        report.drop_take(take_uid, "file_error", None, str(e))
        return None
    clean = validate_take(take_uid, ann, cam, report, config, frame_numbers)
    if clean is None:
        return None
    video = info.video_path(root)
    try:
        if video is None:
            raise FileNotFoundError(f"{root / 'takes.json'}: take {take_uid} lists no ego (aria*) RGB video")
        vi = ex.video_info(video)
    except (FileNotFoundError, ValueError) as e:
        report.drop_take(take_uid, "missing_video", video, str(e))
        return None
    if vi["frames"] and int(clean.frame_numbers[-1]) >= vi["frames"]:
        report.drop_take(take_uid, "missing_video", video,
                         f"video has {vi['frames']} frames, annotations reach frame {int(clean.frame_numbers[-1])}")
        return None
    clean.meta = {"video_path": str(video), "video_hw": (vi["height"], vi["width"]), "annotation": str(path)}
    return clean


def plan_split(
    raw_dir: str | Path,
    split: str,
    annotation: str = "manual",
    config: ValidationConfig | None = None,
    report: ValidationReport | None = None,
    size: int = 224,
    index: RawIndex | None = None,
    progress: bool = False,
) -> list[Episode]:
    """Read and validate the annotations of a split; episodes come back without frames (``frames=None``).

    split: a raw split of annotations/splits.json ("train", "val", "test") or "egghand-train" /
    "egghand-val". Intrinsics are already adjusted to the stored ``size`` x ``size`` frames.
    """
    from tqdm.auto import tqdm

    config = config or ValidationConfig()
    report = report if report is not None else ValidationReport(config.strict)
    index = index or RawIndex.read(raw_dir)
    episodes: list[Episode] = []

    if is_egghand_split(split):
        by_take: dict[str, list[EpisodeSpec]] = defaultdict(list)
        for spec in load_egghand_split(split):
            by_take[spec.take_uid].append(spec)
        for uid, specs in tqdm(by_take.items(), desc=f"validate {split}", disable=not progress):
            if (problem := index.problem(uid)) is not None:
                report.drop_take(uid, *problem)
                continue
            raw_split = index.raw_split_of(uid, annotation)
            if raw_split is None:
                report.drop_take(uid, "file_error", index.root / "annotations",
                                 f"listed take {uid} has no hand annotation file in any split")
                continue
            wanted = np.concatenate([s.frame_numbers for s in specs])
            clean = _read_take(index, uid, raw_split, annotation, report, config, wanted)
            if clean is None:
                continue
            for spec in specs:
                eps = _episodes_in_range(clean, spec, split, size, report)
                episodes += eps
                report.take(uid).episodes += len(eps)
        return episodes

    if (why := split_name_problem(split)) is not None:
        raise ValueError(f"split: {why}")
    known = set(index.take_split.values()) | {d.name for d in (index.root / "annotations" / "ego_pose").glob("*")}
    if split not in known:
        raise ValueError(f"split: unknown {split!r}; {index.root} has {sorted(known)}, "
                         f"or use one of {sorted(EGGHAND_SPLITS)}")
    uids = {u for u, s in index.take_split.items() if s == split}
    uids |= set(ex.annotated_take_uids(index.root, split, annotation))
    if annotation == "manual":
        uids |= set(ex.annotated_take_uids(index.root, split, "automatic"))
    next_index = 0
    for uid in tqdm(sorted(uids), desc=f"validate {split}", disable=not progress):
        if (problem := index.problem(uid)) is not None:  # before its name becomes a path
            report.drop_take(uid, *problem)
            continue
        kinds = ("manual", "automatic") if annotation == "manual" else (annotation,)
        if not any(ex.annotation_path(index.root, split, uid, k).is_file() for k in kinds):
            # Common on real EgoExo4D (hand pose covers a subset of takes): one aggregate entry per split.
            report.add(f"(split {split})", "not_annotated", detail=uid)
            report.take(f"(split {split})").status = "not used"
            continue
        clean = _read_take(index, uid, split, annotation, report, config, None)
        if clean is None:
            continue
        info = index.takes[uid]
        for a, b in contiguous_runs(clean.frame_numbers):
            episodes.append(_episode(clean, slice(a, b), next_index, info.prompt, info.task_name, split, size))
            next_index += 1
        report.take(uid).episodes += len(contiguous_runs(clean.frame_numbers))
    return episodes


def _episode(clean: CleanTake, sl: slice, index: int, task: str, scenario: str, split: str, size: int) -> Episode:
    K = ex.resize_intrinsics(clean.intrinsics, clean.meta["video_hw"], size).astype(np.float32)
    return Episode(
        take_uid=clean.take_uid, episode_index=index, task=task, scenario=scenario, split=split,
        frame_numbers=clean.frame_numbers[sl].copy(), joints=clean.joints[sl].copy(), valid=clean.valid[sl].copy(),
        extrinsics=clean.extrinsics[sl].copy(), intrinsics=K, video_path=clean.meta["video_path"],
    )


def _episodes_in_range(clean: CleanTake, spec: EpisodeSpec, split: str, size: int,
                       report: ValidationReport) -> list[Episode]:
    """The listed episode's frames; if some were dropped, its remaining contiguous pieces (reported)."""
    f = clean.frame_numbers
    inside = (f >= spec.start_frame) & (f <= spec.end_frame) & ((f - spec.start_frame) % FRAME_STRIDE == 0)
    idx = np.nonzero(inside)[0]
    expected = len(spec.frame_numbers)
    if len(idx) < expected:
        report.add(spec.take_uid, "episode_incomplete", frame=spec.start_frame,
                   detail=f"episode {spec.episode_index}: {len(idx)} of {expected} frames left")
    out = []
    for a, b in contiguous_runs(f[idx]):
        out.append(_episode(clean, slice(idx[a], idx[b - 1] + 1), spec.episode_index, spec.task, spec.scenario,
                            split, size))
    return out


def load_episode_frames(episode: Episode, size: int = 224) -> np.ndarray:
    """Decode an episode's frames from its video -> (F, size, size, 3) uint8 (also stored on the episode)."""
    episode.frames = ex.read_video_frames(episode.video_path, episode.frame_numbers, size)
    return episode.frames


def read_episodes(raw_dir: str | Path, split: str, annotation: str = "manual", config: ValidationConfig | None = None,
                  report: ValidationReport | None = None, size: int = 224, with_frames: bool = True) -> list[Episode]:
    """In-memory episodes of a split (no prepared folder): ``plan_split`` then decode every episode's frames."""
    episodes = plan_split(raw_dir, split, annotation, config, report, size)
    if with_frames:
        for ep in episodes:
            load_episode_frames(ep, size)
    return episodes
