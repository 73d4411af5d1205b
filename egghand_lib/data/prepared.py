"""The prepared folder: its layout and file formats, in one place.

``egghand prepare`` writes it; windows, the LeRobot export, feature caches, the demo and the notebooks
read it, all through this module::

    PREP_DIR/
      episodes/{split}/{take_uid}_{first_frame:07d}.safetensors   one episode: arrays + uint8 frames
      stats.json       NormStats of the training split (lerobot layout, plus "info"), canonical, valid joints
      report.json/.md  validation report (every finding, per take)
      settings.json    the settings the episodes were made with (a re-run with other settings is refused)
      manifest.json    written last: format version, splits, episode keys, counts, statistics info

An episode file is a safetensors file: ``frame_numbers`` (F,) int64, ``joints`` (F, 42, 3) float32 world
metres, ``valid`` (F, 42) bool, ``extrinsics`` (F, 3, 4) float32 world -> camera, ``intrinsics`` (3, 3),
``frames`` (F, H, W, 3) uint8; the strings (take uid, prompt, scenario, split, source video), the episode
index, the format version and a digest of the annotations go in the header metadata. Frames are read as
a memory map, never copied.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from egghand_lib.batch import NormStats
from egghand_lib.data.egosynth.config import check_generator_version
from egghand_lib.data.episodes import Episode
from egghand_lib.io import atomic_path, atomic_write_json, check_name, file_sha256, read_json
from egghand_lib.normalization import load_stats, stats_to_json

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
STATS_NAME = "stats.json"
SETTINGS_NAME = "settings.json"
REPORT_JSON, REPORT_MD = "report.json", "report.md"
EPISODES_DIR = "episodes"
EPISODE_SUFFIX = ".safetensors"

_ST_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8,
              "BOOL": np.bool_, "I16": np.int16}
_META_KEYS = ("take_uid", "task", "scenario", "split", "video_path")
_ARRAY_KEYS = ("frame_numbers", "joints", "valid", "extrinsics", "intrinsics", "frames")


# ------------------------------------------------------------------------------------------- paths


def episodes_dir(prep_dir: str | Path, split: str) -> Path:
    """PREP_DIR/episodes/{split}; a split that is not a plain folder name is a ValueError."""
    return Path(prep_dir) / EPISODES_DIR / check_name(split, "split")


def episode_path(prep_dir: str | Path, split: str, key: str) -> Path:
    """The file of the episode ``key`` (``Episode.key``) of ``split``; a key that is not a plain file name (it
    would lead out of the folder) is a ValueError."""
    return episodes_dir(prep_dir, split) / f"{check_name(key, 'episode key')}{EPISODE_SUFFIX}"


def manifest_path(prep_dir: str | Path) -> Path:
    return Path(prep_dir) / MANIFEST_NAME


def stats_path(prep_dir: str | Path) -> Path:
    return Path(prep_dir) / STATS_NAME


def is_prepared(prep_dir: str | Path) -> bool:
    """True when ``prep_dir`` holds a finished preparation (its manifest is written last)."""
    return manifest_path(prep_dir).is_file() and (Path(prep_dir) / SETTINGS_NAME).is_file()


# ------------------------------------------------------------------------------------ episode files


def episode_digest(ep: Episode) -> str:
    """Hash of an episode's annotations and texts (not its frames): a stored file with another digest
    is out of date (the raw annotations changed) and is rewritten on resume."""
    h = hashlib.sha256()
    for a in (ep.frame_numbers, ep.joints, ep.valid, ep.extrinsics, ep.intrinsics):
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    h.update(json.dumps([ep.take_uid, ep.episode_index, ep.task, ep.scenario, ep.split]).encode())
    return h.hexdigest()


def save_episode(ep: Episode, path: str | Path) -> None:
    """Write one episode (with frames) as safetensors, atomically; strings go in the header metadata."""
    if ep.frames is None:
        raise ValueError(f"episode {ep.key}: frames not decoded")
    tensors = {
        "frame_numbers": np.ascontiguousarray(ep.frame_numbers, np.int64),
        "joints": np.ascontiguousarray(ep.joints, np.float32),
        "valid": np.ascontiguousarray(ep.valid, np.bool_),
        "extrinsics": np.ascontiguousarray(ep.extrinsics, np.float32),
        "intrinsics": np.ascontiguousarray(ep.intrinsics, np.float32),
        "frames": np.ascontiguousarray(ep.frames, np.uint8),
    }
    meta = {k: str(getattr(ep, k)) for k in _META_KEYS}
    meta.update(episode_index=str(ep.episode_index), format_version=str(FORMAT_VERSION), digest=episode_digest(ep))
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


MAX_HEADER_BYTES = 100_000_000  # safetensors refuses headers above 100 MB too


def _read_header(path: Path) -> tuple[int, dict]:
    """(header length, header) of a safetensors file, checked against the file's size before reading it."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, MAX_HEADER_BYTES):  # a garbage length would otherwise be allocated and read
            raise ValueError(f"{path}: corrupt safetensors header (declares {n} header bytes, the file has {size})")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise ValueError(f"{path}: corrupt safetensors header") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: corrupt safetensors header (not an object)")
    return n, header


def stored_digest(path: str | Path) -> str | None:
    """The annotation digest recorded in an episode file, or None if the file is unreadable."""
    try:
        return (_read_header(Path(path))[1].get("__metadata__") or {}).get("digest")
    except (OSError, ValueError):
        return None


def load_episode(path: str | Path, mmap: bool = True) -> Episode:
    """Read an episode file; ``frames`` is a read-only np.memmap when ``mmap`` (nothing decoded or copied)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: episode file not found (listed in the manifest; preparation damaged?)")
    n, header = _read_header(path)
    meta = header.pop("__metadata__", {}) or {}
    data_bytes = path.stat().st_size - 8 - n
    arrays = {}
    with open(path, "rb") as f:
        for name, h in header.items():
            dtype, shape, begin, end = _tensor_entry(path, name, h, data_bytes)
            if mmap and name == "frames":
                arrays[name] = np.memmap(path, dtype=dtype, mode="r", offset=8 + n + begin, shape=shape)
            else:
                f.seek(8 + n + begin)
                arrays[name] = np.frombuffer(f.read(end - begin), dtype=dtype).reshape(shape).copy()
    missing = set(_ARRAY_KEYS) - set(arrays)
    if missing or not isinstance(meta, dict) or any(k not in meta for k in _META_KEYS):
        raise ValueError(f"{path}: not an episode file (missing {sorted(missing) or 'metadata'})")
    F = len(arrays["frame_numbers"])
    expected = {"frame_numbers": (F,), "joints": (F, 42, 3), "valid": (F, 42), "extrinsics": (F, 3, 4),
                "intrinsics": (3, 3)}
    wrong = [f"{k} {arrays[k].shape} (expected {v})" for k, v in expected.items() if arrays[k].shape != v]
    if arrays["frames"].ndim != 4 or len(arrays["frames"]) != F or arrays["frames"].shape[-1] != 3:
        wrong.append(f"frames {arrays['frames'].shape} (expected ({F}, H, W, 3))")
    if wrong:
        raise ValueError(f"{path}: not an episode file (shapes: {'; '.join(wrong)})")
    try:
        episode_index = int(meta["episode_index"])
    except ValueError:
        raise ValueError(f"{path}: not an episode file (episode_index {meta['episode_index']!r})") from None
    return Episode(
        take_uid=meta["take_uid"], episode_index=episode_index, task=meta["task"],
        scenario=meta["scenario"], split=meta["split"], frame_numbers=arrays["frame_numbers"],
        joints=arrays["joints"], valid=arrays["valid"], extrinsics=arrays["extrinsics"],
        intrinsics=arrays["intrinsics"], frames=arrays["frames"], video_path=meta["video_path"],
        meta={"path": str(path)},
    )


def _tensor_entry(path: Path, name: str, h, data_bytes: int) -> tuple[np.dtype, tuple[int, ...], int, int]:
    """(dtype, shape, begin, end) of one header entry, checked: a known dtype, offsets inside the file that
    hold exactly the shape's bytes (a truncated or forged file fails here, naming the file and the tensor)."""
    try:
        dtype = np.dtype(_ST_DTYPES[h["dtype"]])
        begin, end = (int(x) for x in h["data_offsets"])
        shape = tuple(int(x) for x in h["shape"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: corrupt safetensors header entry for {name!r}") from None
    if not 0 <= begin <= end <= data_bytes or any(d < 0 for d in shape):
        raise ValueError(f"{path}: tensor {name!r} lies outside the file (bytes {begin}..{end} of {data_bytes}: "
                         "truncated?)")
    if math.prod(shape) * dtype.itemsize != end - begin:
        raise ValueError(f"{path}: tensor {name!r} has {end - begin} bytes for shape {shape} ({dtype})")
    return dtype, shape, begin, end


# ----------------------------------------------------------------------------------------- manifest


def read_manifest(prep_dir: str | Path) -> dict:
    """The manifest of a finished preparation (FileNotFoundError if it is absent: not run, or interrupted)."""
    path = manifest_path(prep_dir)
    manifest = read_json(path, f"no manifest; run `egghand prepare --out {prep_dir}` (or it was interrupted)")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("splits"), dict):
        raise ValueError(f"{path}: not a prepared-folder manifest (no 'splits' object)")
    return manifest


def write_manifest(prep_dir: str | Path, manifest: dict) -> None:
    atomic_write_json(manifest_path(prep_dir), manifest)


def manifest_digest(prep_dir: str | Path) -> str:
    """SHA-256 of the manifest: the identity of the prepared data (feature caches and exports record it)."""
    path = manifest_path(prep_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; cannot identify the prepared data (preparation unfinished?)")
    return file_sha256(path)


def source_generator(raw_dir: str | Path) -> dict | None:
    """{"generator", "version"} of EgoSynth raw data (from its ROOT/manifest.json), None for other data."""
    try:
        m = json.loads((Path(raw_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(m, dict) and str(m.get("version", "")).startswith("egosynth")):
        return None
    return {"generator": m.get("generator"), "version": m["version"]}


def check_source(manifest: dict, prep_dir: str | Path) -> None:
    """Refuse a folder prepared from another EgoSynth version. A manifest without a "source" entry was written
    before the source was recorded: if its raw folder is EgoSynth, that was EgoSynth 1."""
    source = manifest.get("source")
    if "source" not in manifest and manifest.get("raw_dir") and source_generator(manifest["raw_dir"]) is not None:
        source = {"version": "egosynth-1.0"}
    check_generator_version((source or {}).get("version"), f"{prep_dir} (prepared folder)")


def load_split_episodes(prep_dir: str | Path, split: str, mmap: bool = True) -> list[Episode]:
    """All episodes of a prepared split, in manifest order (frames memory-mapped)."""
    manifest = read_manifest(prep_dir)
    check_source(manifest, prep_dir)
    if split not in manifest["splits"]:
        raise ValueError(f"split: {split!r} was not prepared in {prep_dir}; available: {sorted(manifest['splits'])}")
    entry = manifest["splits"][split]
    keys = entry.get("episodes") if isinstance(entry, dict) else None
    if not isinstance(keys, list):
        raise ValueError(f"{manifest_path(prep_dir)}: splits.{split}.episodes is not a list of episode keys")
    try:
        paths = [episode_path(prep_dir, split, key) for key in keys]
    except ValueError as e:
        raise ValueError(f"{manifest_path(prep_dir)}: {e}") from None
    return [load_episode(p, mmap) for p in paths]


# ------------------------------------------------------------------------------------------- stats


def write_stats(prep_dir: str | Path, stats: NormStats, **info) -> None:
    """PREP_DIR/stats.json: the statistics in lerobot's layout plus free-form ``info``, atomically."""
    atomic_write_json(stats_path(prep_dir), {**stats_to_json(stats), "info": info})


def read_stats(prep_dir: str | Path) -> NormStats | None:
    """The training-split statistics of a prepared folder, or None when it has none (no training split)."""
    path = stats_path(prep_dir)
    return load_stats(path) if path.is_file() else None
