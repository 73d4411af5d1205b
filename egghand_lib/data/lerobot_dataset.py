"""EggHand episodes as a LeRobot dataset (format v3.0; lerobot 0.4.4 or 0.6), and windows read back from it.

Export: one LeRobot episode per ``Episode``, one LeRobot frame per 10 fps frame, images stored as PNG
inside the parquet files (``use_videos=False``: no FFmpeg needed). Per frame, in WORLD coordinates:

- ``observation.state``        (138,) float32: world joints (42 x 3, 0 where invalid) + 3x4 world->camera.
- ``observation.joints_valid`` (42,) bool.
- ``action``                   (126,) float32: the world joints again. A policy forecasts future ``action``
                               values; the windows read them at the protocol's target offsets.
- ``observation.images.ego``   (H, W, 3) image (uint8 RGB, lossless PNG).
- ``observation.frame_number`` int64: the 30 fps EgoExo4D frame number.
- ``task``: the prompt (LeRobot's task table).

Per-episode metadata that LeRobot has no column for (take uid, scenario, split, our episode index,
intrinsics) goes to ``meta/egghand.json`` beside LeRobot's own ``meta/info.json``.

Read back: ``LeRobotWindowDataset`` asks ``LeRobotDataset`` for the window offsets through
``delta_timestamps`` (observed -1.9..0 s, targets per protocol, images at -1.8, -1.2, -0.6, 0 s) and
canonicalises each item with the same code path as ``egghand_lib.data.windows``: LeRobot clamps
out-of-episode offsets to the nearest frame and flags them in ``*_is_pad``; padded joints become invalid,
exactly like ``make_windows``. The result is the single-window dict of ``egghand_lib.batch``.

Statistics: the training split's canonical-window statistics (``egghand_lib.data.statistics``) travel
with the export as ``meta/egghand_stats.json`` (LeRobot's own ``meta/stats.json`` describes the stored
world-frame features, which is not what the model normalises with).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lerobot.datasets.aggregate import aggregate_datasets
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.utils.utils import SuppressProgressBars
from tqdm.auto import tqdm

from egghand_lib.batch import FPS, NUM_OBS, OBS_OFFSETS, VIDEO_OFFSETS, NormStats, collate_windows, target_offsets
from egghand_lib.data import prepared
from egghand_lib.data.episodes import Episode
from egghand_lib.data.windows import WindowDataset, canonicalize_windows, concat_windows, make_windows
from egghand_lib.io import atomic_dir, atomic_write_json, clean_partials, file_sha256
from egghand_lib.normalization import load_stats, save_stats, stats_from_json
from egghand_lib.skeleton import JOINT_NAMES, NUM_JOINTS

STATE = "observation.state"
VALID = "observation.joints_valid"
ACTION = "action"
IMAGE = "observation.images.ego"
FRAME_NUMBER = "observation.frame_number"
SIDECAR = "meta/egghand.json"
SIDECAR_FORMAT = "egghand-lerobot/1"
STATS_FILE = "meta/egghand_stats.json"
DEFAULT_REPO_ID = "egghand/egosynth"

_XYZ = ("x", "y", "z")
JOINT_COORD_NAMES = [f"{j}.{a}" for j in JOINT_NAMES for a in _XYZ]
EXTRINSIC_NAMES = [f"E{r}{c}" for r in range(3) for c in range(4)]


def lerobot_features(height: int = 224, width: int = 224) -> dict[str, dict]:
    """The LeRobot feature spec of an exported EggHand dataset (frames of ``height`` x ``width``)."""
    return {
        STATE: {"dtype": "float32", "shape": (3 * NUM_JOINTS + 12,), "names": JOINT_COORD_NAMES + EXTRINSIC_NAMES},
        VALID: {"dtype": "bool", "shape": (NUM_JOINTS,), "names": list(JOINT_NAMES)},
        ACTION: {"dtype": "float32", "shape": (3 * NUM_JOINTS,), "names": JOINT_COORD_NAMES},
        IMAGE: {"dtype": "image", "shape": (height, width, 3), "names": ["height", "width", "channels"]},
        FRAME_NUMBER: {"dtype": "int64", "shape": (1,), "names": None},
    }


def _check_episode(ep: Any) -> None:
    """Shapes of an Episode (egghand_lib.data.episodes), with a message naming the take."""
    F = len(ep.frame_numbers)
    name = f"episode {getattr(ep, 'take_uid', '?')}#{getattr(ep, 'episode_index', '?')}"
    if F == 0:
        raise ValueError(f"{name}: no frames")
    expect = {"joints": (F, NUM_JOINTS, 3), "valid": (F, NUM_JOINTS), "extrinsics": (F, 3, 4)}
    for key, shape in expect.items():
        got = tuple(np.shape(getattr(ep, key)))
        if got != shape:
            raise ValueError(f"{name}: {key} has shape {got}, expected {shape}")
    if ep.frames is None:
        raise ValueError(f"{name}: frames were not decoded (frames is None)")
    fr = np.shape(ep.frames)
    if len(fr) != 4 or fr[0] != F or fr[3] != 3:
        raise ValueError(f"{name}: frames has shape {fr}, expected ({F}, H, W, 3)")
    if np.asarray(ep.frames).dtype != np.uint8:
        raise ValueError(f"{name}: frames must be uint8 RGB, got {np.asarray(ep.frames).dtype}")
    if F > 1 and not np.all(np.diff(np.asarray(ep.frame_numbers)) == 3):
        raise ValueError(f"{name}: frame_numbers must be consecutive 30 fps numbers exactly 3 apart")


def export_lerobot(
    episodes: Iterable[Any],
    root: str | Path,
    repo_id: str = DEFAULT_REPO_ID,
    fps: int = FPS,
    overwrite: bool = False,
    image_writer_threads: int = 0,
    progress: bool = False,
    stats: NormStats | dict | None = None,
    source: dict | None = None,
    part_size: int = 64,
    up: tuple[float, float, float] = (0.0, 0.0, 1.0),
) -> Any:
    """Write ``episodes`` (egghand_lib.data.episodes.Episode) as a local LeRobot v3.0 dataset at ``root``.

    Works offline (nothing is pushed or pulled). The folder appears atomically: an interrupted export
    leaves no ``root``, only hidden work folders beside it. Returns the dataset re-opened from ``root``.
    ``image_writer_threads`` > 0 writes PNGs in background threads (lerobot's AsyncImageWriter).
    ``stats``: the training split's canonical-window statistics (NormStats or lerobot layout), stored as
    ``meta/egghand_stats.json`` and served as ``LeRobotWindowDataset.stats``. LeRobot's own
    ``meta/stats.json`` describes the stored WORLD-frame features and is not what the model normalises with.
    ``source``: identity of the input (recorded in ``meta/egghand.json``). With a ``source`` and a list
    of more than ``part_size`` episodes the export is RESUMABLE: it writes parts of ``part_size``
    episodes into ``.{root.name}.export/`` (each part atomically), skips parts already written for the
    same source and episodes when re-run, and merges them with lerobot's ``aggregate_datasets``.
    ``up``: the world's up axis, recorded for the reader's canonical frame.
    """
    root = Path(root)
    if root.exists() and not overwrite:
        raise FileExistsError(f"root: {root} already exists (pass overwrite=True to replace it)")
    if fps != FPS:
        raise ValueError(f"fps: EggHand windows are defined at {FPS} fps, got {fps}")
    if part_size < 1:
        raise ValueError(f"part_size: must be >= 1, got {part_size}")
    meta = {"format": SIDECAR_FORMAT, "fps": fps, "up": [float(u) for u in up], "source": source or {}}
    stats = stats_from_json(stats, "stats") if isinstance(stats, dict) else stats
    if isinstance(episodes, Sequence) and len(episodes) > part_size:
        _export_in_parts(list(episodes), root, repo_id, overwrite, image_writer_threads, progress, meta,
                         part_size, resume=source is not None, stats=stats)
    else:
        bar = _progress(progress, "export lerobot", len(episodes) if hasattr(episodes, "__len__") else None)
        with atomic_dir(root, overwrite=overwrite) as tmp:
            tmp.rmdir()  # LeRobotDataset.create insists on creating the folder itself
            try:
                _write_dataset(episodes, tmp, repo_id, image_writer_threads, bar, meta)
            finally:
                bar.close()
            if stats is not None:
                save_stats(stats, tmp / STATS_FILE)
    return _open_lerobot(repo_id, root)


def _open_lerobot(repo_id: str, root: Path) -> Any:
    return LeRobotDataset(repo_id, root=root)


# The two places where lerobot 0.4 and 0.5+ (which split LeRobotDataset into a DatasetWriter and a
# DatasetReader) differ for this module. Told apart by what the dataset has, not by version numbers.


def _finish_writing(ds: LeRobotDataset) -> None:
    """Wait for and stop the PNG writer threads, then close the parquet writers."""
    if hasattr(ds, "stop_image_writer"):  # lerobot 0.4; 0.5+'s finalize() stops its writer's threads itself
        ds.stop_image_writer()
    ds.finalize()


def _replace_hf_dataset(ds: LeRobotDataset, hf_dataset: Any) -> None:
    """Make ``ds`` read its frames from ``hf_dataset`` (a column subset of its own ``ds.hf_dataset``)."""
    # lerobot 0.5+: ds.hf_dataset is a read-only view of ds.reader.hf_dataset; 0.4 has no reader
    holder = ds.reader if getattr(ds, "reader", None) is not None else ds
    holder.hf_dataset = hf_dataset


def _episode_key(ep: Any) -> list:
    return [ep.take_uid, int(ep.episode_index), int(ep.frame_numbers[0]), len(ep.frame_numbers)]


def _write_dataset(episodes: Iterable[Any], folder: Path, repo_id: str, image_writer_threads: int, bar: Any,
                   meta: dict) -> None:
    """One pass: a LeRobot dataset at ``folder`` (which must not exist) + its ``meta/egghand.json``."""
    it = iter(episodes)
    first = next(it, None)
    if first is None:
        raise ValueError("episodes: nothing to export (empty iterable)")
    _check_episode(first)
    h, w = np.shape(first.frames)[1:3]
    ds = LeRobotDataset.create(repo_id, fps=FPS, features=lerobot_features(h, w), root=folder, use_videos=False,
                               image_writer_threads=image_writer_threads)
    sidecar: list[dict] = []
    try:
        for ep in _chain(first, it):
            _check_episode(ep)
            if tuple(np.shape(ep.frames)[1:3]) != (h, w):
                raise ValueError(f"episode {ep.take_uid}#{ep.episode_index}: frames are "
                                 f"{np.shape(ep.frames)[1:3]}, the dataset's first episode has {(h, w)}")
            _add_episode(ds, ep)
            sidecar.append({
                "take_uid": ep.take_uid, "episode_index": int(ep.episode_index), "task": ep.task,
                "scenario": ep.scenario, "split": ep.split, "num_frames": len(ep.frame_numbers),
                "intrinsics": np.asarray(ep.intrinsics, dtype=np.float64).tolist(),
            })
            bar.update(1)
    finally:  # also on failure: no PNG writer threads or open parquet writers left behind
        _finish_writing(ds)
    atomic_write_json(folder / SIDECAR, {**meta, "episodes": sidecar})


def _export_in_parts(episodes: list, root: Path, repo_id: str, overwrite: bool, image_writer_threads: int,
                     progress: bool, meta: dict, part_size: int, resume: bool, stats: NormStats | None) -> None:
    """Resumable export: parts of ``part_size`` episodes in a work folder, then one aggregated dataset."""
    work = root.parent / f".{root.name}.export"
    parts = [episodes[i: i + part_size] for i in range(0, len(episodes), part_size)]
    plan = {"repo_id": repo_id, "source": meta["source"], "parts": [[_episode_key(e) for e in p] for p in parts]}
    plan_path = work / "plan.json"
    try:
        same = resume and json.loads(plan_path.read_text()) == json.loads(json.dumps(plan))
    except (FileNotFoundError, json.JSONDecodeError):
        same = False
    if not same:  # another input (or no identity to resume by): start over
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        atomic_write_json(plan_path, plan)
    clean_partials(work)
    bar = _progress(progress, "export lerobot", len(episodes))
    part_roots = []
    try:
        for i, part in enumerate(parts):
            folder = work / f"part_{i:05d}"
            part_roots.append(folder)
            if (folder / SIDECAR).is_file():  # parts appear atomically: this one is complete
                bar.update(len(part))
                continue
            with atomic_dir(folder, overwrite=True) as tmp:
                tmp.rmdir()
                _write_dataset(part, tmp, repo_id, image_writer_threads, bar, meta)
    finally:
        bar.close()
    sidecars = [read_sidecar(p)["episodes"] for p in part_roots]
    with atomic_dir(root, overwrite=overwrite) as tmp:
        tmp.rmdir()
        with SuppressProgressBars(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            aggregate_datasets([repo_id] * len(part_roots), repo_id, roots=part_roots, aggr_root=tmp)
        atomic_write_json(tmp / SIDECAR, {**meta, "episodes": [e for sc in sidecars for e in sc]})
        if stats is not None:
            save_stats(stats, tmp / STATS_FILE)
    shutil.rmtree(work, ignore_errors=True)


def _chain(first, rest):
    yield first
    yield from rest


def _progress(enabled: bool, desc: str, total: int | None = None):
    return tqdm(desc=desc, unit="ep", total=total, disable=not enabled)


def _add_episode(ds: Any, ep: Any) -> None:
    valid = np.asarray(ep.valid, dtype=bool)
    joints = np.where(valid[..., None], np.asarray(ep.joints, dtype=np.float32), np.float32(0))
    joints = joints.reshape(len(valid), 3 * NUM_JOINTS)
    state = np.concatenate([joints, np.asarray(ep.extrinsics, dtype=np.float32).reshape(len(valid), 12)], axis=1)
    for f in range(len(valid)):
        ds.add_frame({
            STATE: state[f], VALID: valid[f], ACTION: joints[f].copy(),
            IMAGE: np.ascontiguousarray(ep.frames[f]),
            FRAME_NUMBER: np.asarray([ep.frame_numbers[f]], dtype=np.int64),
            "task": ep.task,
        })
    with warnings.catch_warnings(), SuppressProgressBars():
        # lerobot's histogram of the bool validity feature warns about the bool -> uint8 cast
        warnings.filterwarnings("ignore", message="Converting input from bool", category=RuntimeWarning)
        # datasets converts lerobot's shape-(1,) int64 columns to scalars
        warnings.filterwarnings("ignore", message="Conversion of an array with ndim > 0", category=DeprecationWarning)
        ds.save_episode()


def export_lerobot_from_prepared(prep_dir: str | Path, split: str, root: str | Path,
                                 repo_id: str = DEFAULT_REPO_ID, overwrite: bool = False,
                                 progress: bool = True, force: bool = False) -> Any:
    """Export the episodes of a prepared folder's split (``egghand prepare --lerobot``) to ``root``.

    Window i of ``LeRobotWindowDataset(root)`` is window i of ``WindowDataset(prep_dir, split)``, and the
    prepared training statistics (PREP_DIR/stats.json) travel along. An existing export of the same
    prepared data (same PREP_DIR/manifest.json hash and split) is kept as it is unless ``force``, so a
    re-run of ``egghand prepare --lerobot`` is cheap; a different one is replaced only with ``overwrite``.
    """
    prep_dir, root = Path(prep_dir), Path(root)
    ep_dir = prepared.episodes_dir(prep_dir, split)
    if not ep_dir.is_dir():
        raise FileNotFoundError(f"prep_dir: no prepared split {split!r} (missing folder {ep_dir})")
    source = {"prep_manifest_sha256": prepared.manifest_digest(prep_dir), "split": split}
    if root.exists() and not force:
        try:
            current = read_sidecar(root).get("source") == source
        except (FileNotFoundError, ValueError):
            current = False
        if current:
            return LeRobotDataset(repo_id, root=root)
    # WindowDataset's episode order, so that window i of both datasets is the same window.
    wd = WindowDataset(prep_dir, split)
    return export_lerobot(wd.episodes, root, repo_id=repo_id, overwrite=overwrite or force, progress=progress,
                          stats=wd.stats, source=source, up=wd.up)


# ----------------------------------------------------------------------------------------- reading


def read_sidecar(root: str | Path) -> dict:
    """``meta/egghand.json`` of an exported dataset, checked."""
    path = Path(root) / SIDECAR
    if not path.is_file():
        raise FileNotFoundError(f"root: {path} not found; {root} is not an EggHand LeRobot export")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT or not isinstance(data.get("episodes"), list):
        raise ValueError(f"{path}: expected an object with format {SIDECAR_FORMAT!r} and an 'episodes' list")
    return data


def window_delta_timestamps(protocol: str = "future") -> dict[str, list[float]]:
    """The ``delta_timestamps`` (seconds) that give one window per frame at 10 fps.

    State and validity are read at observed + target offsets (union, sorted), ``action`` at the target
    offsets, the ego image at the four video offsets.
    """
    tgt = target_offsets(protocol)
    union = sorted(set(OBS_OFFSETS) | set(tgt))
    sec = lambda offs: [k / FPS for k in offs]  # noqa: E731
    return {STATE: sec(union), VALID: sec(union), ACTION: sec(tgt), IMAGE: sec(VIDEO_OFFSETS)}


class LeRobotWindowDataset(torch.utils.data.Dataset):
    """Windows (egghand_lib.batch single-window dicts) read through ``LeRobotDataset`` + delta_timestamps.

    Item i is the window whose current frame is LeRobot frame i (one window per frame, like
    ``WindowDataset``). ``load_frames=False`` skips image decoding (items then have no "frames").
    ``stats``: the training statistics exported with the data (NormStats) or None.
    """

    def __init__(self, root: str | Path, repo_id: str = DEFAULT_REPO_ID, protocol: str = "future",
                 up: tuple[float, float, float] | None = None, load_frames: bool = True,
                 episodes: list[int] | None = None):
        self.root = Path(root)
        if not (self.root / "meta" / "info.json").is_file():
            raise FileNotFoundError(f"root: {self.root / 'meta' / 'info.json'} not found; not a LeRobot dataset")
        target_offsets(protocol)  # validates the name
        self.protocol = protocol
        self.load_frames = load_frames
        self.repo_id = repo_id
        self.sidecar = read_sidecar(self.root)
        # The up axis the export recorded (the prepared data's), unless given.
        self.up = tuple(float(u) for u in (up if up is not None else self.sidecar.get("up", (0.0, 0.0, 1.0))))
        stats_path = self.root / STATS_FILE
        self.stats: NormStats | None = None  # the training split's canonical statistics, if exported with them
        if stats_path.is_file():
            self.stats = load_stats(stats_path)
        delta = window_delta_timestamps(protocol)
        image_delta = {IMAGE: delta.pop(IMAGE)}
        # Two LeRobotDatasets over the same files. With lerobot's custom transform, a delta query of one
        # column converts ALL columns of the queried rows, so state/valid/action queries (~70 rows) would
        # decode ~70 PNGs per window. The numeric view has no image column; the image view has only it.
        self.lerobot = LeRobotDataset(repo_id, root=self.root, delta_timestamps=delta, episodes=episodes)
        _replace_hf_dataset(self.lerobot, self.lerobot.hf_dataset.remove_columns([IMAGE]))
        self.images = None
        if load_frames:
            self.images = LeRobotDataset(repo_id, root=self.root, delta_timestamps=image_delta, episodes=episodes)
            keep = [IMAGE, "index", "episode_index", "task_index", "timestamp"]
            _replace_hf_dataset(self.images, self.images.hf_dataset.select_columns(keep))
        if self.lerobot.meta.total_episodes != len(self.sidecar["episodes"]):
            raise ValueError(f"{self.root / SIDECAR}: lists {len(self.sidecar['episodes'])} episodes, the LeRobot "
                             f"dataset has {self.lerobot.meta.total_episodes}")
        union = sorted(set(OBS_OFFSETS) | set(target_offsets(protocol)))
        self._obs_pos = [union.index(k) for k in OBS_OFFSETS]
        self._tgt_pos = [union.index(k) for k in target_offsets(protocol)]

    def __len__(self) -> int:
        return len(self.lerobot)

    def fingerprint(self) -> dict:
        """Identity of the windows (for feature caches): data files' hashes, protocol, number of windows."""
        if getattr(self, "_fingerprint", None) is None:
            self._fingerprint = self._compute_fingerprint()
        return dict(self._fingerprint)

    def _compute_fingerprint(self) -> dict:
        h = hashlib.sha256()
        for p in sorted((self.root / "data").rglob("*.parquet")) + [self.root / "meta" / "info.json",
                                                                     self.root / SIDECAR]:
            h.update(p.relative_to(self.root).as_posix().encode())
            h.update(str(p.stat().st_size).encode())
            h.update(file_sha256(p).encode())
        return {"source": "lerobot", "data_sha256": h.hexdigest(), "protocol": self.protocol,
                "num_windows": len(self), "up": list(self.up)}

    def __getitem__(self, idx: int) -> dict:
        item = self.lerobot[int(idx)]
        ep = self.sidecar["episodes"][int(item["episode_index"])]
        state = item[STATE].numpy()  # (Q, 138) world
        pad = item[f"{STATE}_is_pad"].numpy()  # (Q,)
        valid = item[VALID].numpy().astype(bool) & ~pad[:, None]
        joints = state[:, : 3 * NUM_JOINTS].reshape(-1, NUM_JOINTS, 3)
        extr = state[:, 3 * NUM_JOINTS:].reshape(-1, 3, 4)
        # Targets come from the action column; its values equal the state's joints at the same frames.
        tgt_joints = item[ACTION].numpy().reshape(-1, NUM_JOINTS, 3)
        o, t = self._obs_pos, self._tgt_pos
        # The same function make_windows uses: one code path for both readers.
        arrays = canonicalize_windows(
            past_joints=joints[o][None], past_valid=valid[o][None], past_extrinsics=extr[o][None],
            future_joints=tgt_joints[None], future_valid=valid[t][None], future_extrinsics=extr[t][None],
            frame_valid=~np.concatenate([pad[o], pad[t]])[None], up=self.up, protocol=self.protocol,
        )
        out = {k: torch.from_numpy(np.array(v[0])) for k, v in arrays.items()}  # copies, keeps 0-d
        if self.images is not None:
            img = self.images[int(idx)][IMAGE]  # (4, 3, H, W) float in [0, 1], from lossless PNG
            out["frames"] = (img * 255).round().to(torch.uint8)
        out["task"] = item["task"]
        out["episode_index"] = torch.tensor(int(ep["episode_index"]), dtype=torch.int64)
        out["frame_index"] = torch.tensor(int(item[FRAME_NUMBER]), dtype=torch.int64)
        out["take_uid"] = ep["take_uid"]
        out["scenario"] = ep["scenario"]
        return out

    def to_episodes(self, frames: bool = False) -> list[Any]:
        """The stored episodes back as ``Episode`` objects (the inverse of ``export_lerobot``), read column-wise.

        ``frames=True`` also decodes every image (needs ``load_frames=True``); otherwise frames is None.
        """
        cols = [STATE, VALID, FRAME_NUMBER, "episode_index"]
        d = self.lerobot.hf_dataset.with_format("numpy", columns=cols)[:]
        if frames:
            if self.images is None:
                raise ValueError("frames: this dataset was opened with load_frames=False")
            imgs = self.images.hf_dataset.with_format("numpy", columns=[IMAGE])[:][IMAGE]
        out = []
        for e in np.unique(d["episode_index"]):
            rows = np.nonzero(d["episode_index"] == e)[0]
            meta = self.sidecar["episodes"][int(e)]
            state = d[STATE][rows]
            out.append(Episode(
                take_uid=meta["take_uid"], episode_index=int(meta["episode_index"]), task=meta["task"],
                scenario=meta["scenario"], split=meta["split"],
                frame_numbers=d[FRAME_NUMBER][rows].reshape(-1).astype(np.int64),
                joints=state[:, : 3 * NUM_JOINTS].reshape(-1, NUM_JOINTS, 3).copy(),
                valid=d[VALID][rows].astype(bool), extrinsics=state[:, 3 * NUM_JOINTS:].reshape(-1, 3, 4).copy(),
                intrinsics=np.asarray(meta["intrinsics"], dtype=np.float32),
                frames=np.stack(imgs[rows]).astype(np.uint8) if frames else None,
            ))
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """All non-image window arrays at once, vectorised (as ``WindowDataset.arrays()``; for baselines/metrics)."""
        return concat_windows([make_windows(ep, self.protocol, self.up) for ep in self.to_episodes()])

    @staticmethod
    def collate_fn(windows: list[dict]) -> dict:
        return collate_windows(windows)


__all__ = [
    "ACTION", "DEFAULT_REPO_ID", "FRAME_NUMBER", "IMAGE", "NUM_OBS", "STATE", "VALID", "LeRobotWindowDataset",
    "export_lerobot", "export_lerobot_from_prepared", "lerobot_features", "read_sidecar", "window_delta_timestamps",
]
