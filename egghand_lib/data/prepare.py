"""``egghand prepare``: EgoExo4D-layout files -> a prepared folder of validated episodes.

PREP_DIR layout (CONTRACTS.md "Prepared data")::

    episodes/{split}/{take_uid}_{first_frame:07d}.safetensors   one episode: arrays + 224x224 uint8 frames
    stats.json       NormStats of the training split (lerobot layout), canonical, valid joints only
    report.json/.md  validation report (every finding, per take)
    settings.json    the settings the episodes were made with (a re-run with other settings is refused)
    manifest.json    written last: splits, episode files, counts

Two phases: (1) read and validate every take's JSON annotations (strict mode fails here, before any
output); (2) decode each episode's video frames and write the episode atomically. A re-run skips
episodes already written, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
from collections import defaultdict
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from egghand_lib.data.egosynth.config import check_generator_version
from egghand_lib.data.episodes import Episode, RawIndex, is_egghand_split, load_episode_frames, plan_split
from egghand_lib.data.validation import ValidationConfig, ValidationReport
from egghand_lib.io import atomic_path, atomic_write_json, atomic_write_text, clean_partials

FORMAT_VERSION = 1
_ST_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8,
              "BOOL": np.bool_, "I16": np.int16}
_META_KEYS = ("take_uid", "task", "scenario", "split", "video_path")


# ------------------------------------------------------------------------------------ episode files


def save_episode(ep: Episode, path: str | Path) -> None:
    """Write one episode (with frames) as safetensors, atomically; strings go in the header metadata."""
    from safetensors.numpy import save_file

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


def _read_header(path: Path) -> tuple[int, dict]:
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", head)
        try:
            return n, json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError(f"{path}: corrupt safetensors header") from None


def _stored_digest(path: Path) -> str | None:
    try:
        return (_read_header(path)[1].get("__metadata__") or {}).get("digest")
    except (OSError, ValueError):
        return None


def load_episode(path: str | Path, mmap: bool = True) -> Episode:
    """Read an episode file; ``frames`` is a read-only np.memmap when ``mmap`` (nothing decoded or copied)."""
    path = Path(path)
    n, header = _read_header(path)
    meta = header.pop("__metadata__", {}) or {}
    arrays = {}
    with open(path, "rb") as f:
        for name, h in header.items():
            dtype = _ST_DTYPES[h["dtype"]]
            begin, end = h["data_offsets"]
            shape = tuple(h["shape"])
            if mmap and name == "frames":
                arrays[name] = np.memmap(path, dtype=dtype, mode="r", offset=8 + n + begin, shape=shape)
            else:
                f.seek(8 + n + begin)
                arrays[name] = np.frombuffer(f.read(end - begin), dtype=dtype).reshape(shape).copy()
    missing = {"frame_numbers", "joints", "valid", "extrinsics", "intrinsics", "frames"} - set(arrays)
    if missing or any(k not in meta for k in _META_KEYS):
        raise ValueError(f"{path}: not an episode file (missing {sorted(missing) or 'metadata'})")
    return Episode(
        take_uid=meta["take_uid"], episode_index=int(meta["episode_index"]), task=meta["task"],
        scenario=meta["scenario"], split=meta["split"], frame_numbers=arrays["frame_numbers"],
        joints=arrays["joints"], valid=arrays["valid"], extrinsics=arrays["extrinsics"],
        intrinsics=arrays["intrinsics"], frames=arrays["frames"], video_path=meta["video_path"],
        meta={"path": str(path)},
    )


def read_manifest(prep_dir: str | Path) -> dict:
    path = Path(prep_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; run `egghand prepare --out {prep_dir}` (or it was interrupted)")
    with open(path) as f:
        return json.load(f)


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
    """Refuse a folder prepared from another EgoSynth version. Folders prepared before the source was recorded
    come from EgoSynth version 1 if their raw folder is EgoSynth."""
    source = manifest.get("source")
    if "source" not in manifest and manifest.get("raw_dir") and source_generator(manifest["raw_dir"]) is not None:
        source = {"version": "egosynth-1.0"}
    check_generator_version((source or {}).get("version"), f"{prep_dir} (prepared folder)")


def load_split_episodes(prep_dir: str | Path, split: str, mmap: bool = True) -> list[Episode]:
    """All episodes of a prepared split, in manifest order (frames memory-mapped)."""
    prep_dir = Path(prep_dir)
    manifest = read_manifest(prep_dir)
    check_source(manifest, prep_dir)
    if split not in manifest["splits"]:
        raise ValueError(f"split: {split!r} was not prepared in {prep_dir}; available: {sorted(manifest['splits'])}")
    folder = prep_dir / "episodes" / split
    return [load_episode(folder / f"{key}.safetensors", mmap) for key in manifest["splits"][split]["episodes"]]


# ------------------------------------------------------------------------------------------ prepare


def _training_split(splits: list[str], stats_split: str | None) -> str | None:
    if stats_split is not None:
        if stats_split not in splits:
            raise ValueError(f"stats_split: {stats_split!r} is not among the prepared splits {splits}")
        return stats_split
    for name in ("egghand-train", "train"):
        if name in splits:
            return name
    return None


def prepare_dataset(
    raw_dir: str | Path,
    out_dir: str | Path,
    splits: tuple[str, ...] | list[str] = ("train", "val"),
    strict: bool = False,
    annotation: str = "manual",
    size: int = 224,
    up: tuple[float, float, float] = (0.0, 0.0, 1.0),
    stats_split: str | None = None,
    stats_protocol: str = "future",
    validation: ValidationConfig | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Validate, cut into episodes, decode frames and write PREP_DIR.

    Returns the manifest (dict) plus "last_run": counts of episode files written / skipped / removed.

    splits: raw split names ("train", "val", "test") and/or "egghand-train" / "egghand-val".
    strict: raise ValidationError at the first problem (before anything is written); otherwise drop
    what is invalid and count it in report.json / report.md. overwrite: discard an existing PREP_DIR
    made with other settings (otherwise that is an error). A re-run with the same settings resumes.
    """
    from tqdm.auto import tqdm

    raw_dir, out_dir = Path(raw_dir).resolve(), Path(out_dir)
    splits = list(dict.fromkeys(splits))
    if not splits:
        raise ValueError("splits: empty")
    if int(size) < 1:
        raise ValueError(f"size: expected a positive number of pixels, got {size}")
    cfg = replace(validation or ValidationConfig(), strict=bool(strict))
    source = source_generator(raw_dir)
    check_generator_version((source or {}).get("version"), raw_dir / "manifest.json")
    train_split = _training_split(splits, stats_split)
    settings = {"format_version": FORMAT_VERSION, "raw_dir": str(raw_dir), "annotation": annotation,
                "size": int(size), "up": [float(u) for u in up], "validation": {**asdict(cfg), "strict": None}}
    settings_path = out_dir / "settings.json"
    if settings_path.is_file():
        with open(settings_path) as f:
            old = json.load(f)
        if old != settings:
            if not overwrite:
                raise ValueError(f"{out_dir}: prepared with other settings ({settings_path}); "
                                 "use overwrite=True (--overwrite) or another folder")
            _clear(out_dir)

    # Phase 1: read + validate all annotations (strict mode stops here, before any output).
    report = ValidationReport(strict)
    index = RawIndex.read(raw_dir)
    planned: dict[str, list[Episode]] = {}
    for split in splits:
        planned[split] = plan_split(raw_dir, split, annotation, cfg, report, size, index, progress)

    # Phase 2: decode frames per take and write each episode atomically; existing files are kept (resume).
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_partials(out_dir)
    atomic_write_json(settings_path, settings)
    counts = {"written": 0, "skipped": 0, "removed_stale": 0}
    for split in splits:
        folder = out_dir / "episodes" / split
        folder.mkdir(parents=True, exist_ok=True)
        clean_partials(folder)
        by_take: dict[str, list[Episode]] = defaultdict(list)
        for ep in planned[split]:
            by_take[ep.take_uid].append(ep)
        kept: list[Episode] = []
        for uid, eps in tqdm(by_take.items(), desc=f"frames {split}", unit="take", disable=not progress):
            try:
                for ep in eps:
                    path = folder / f"{ep.key}.safetensors"
                    if path.is_file() and _stored_digest(path) == episode_digest(ep):
                        counts["skipped"] += 1
                        continue
                    load_episode_frames(ep, size)
                    save_episode(ep, path)
                    ep.frames = None  # keep memory flat; the file holds them now
                    counts["written"] += 1
            except (FileNotFoundError, ValueError) as e:
                report.drop_take(uid, "missing_video", ep.video_path, str(e))  # raises in strict mode
                for other in eps:
                    (folder / f"{other.key}.safetensors").unlink(missing_ok=True)
                continue
            kept += eps
        planned[split] = kept
        wanted = {f"{ep.key}.safetensors" for ep in kept}
        for p in folder.glob("*.safetensors"):
            if p.name not in wanted:  # from an earlier run whose take is now dropped
                p.unlink()
                counts["removed_stale"] += 1

    # Statistics of the training split (canonical, valid joints only), from the arrays in memory.
    stats_info = None
    if train_split is not None and not planned[train_split]:
        (out_dir / "stats.json").unlink(missing_ok=True)  # an empty training split has no statistics
    if train_split is not None and planned[train_split]:
        from egghand_lib.data.windows import compute_stats, save_stats

        stats = compute_stats(planned[train_split], stats_protocol, up)
        stats_info = {"split": train_split, "protocol": stats_protocol,
                      "windows": int(sum(len(e) for e in planned[train_split]))}
        save_stats(stats, out_dir / "stats.json", **stats_info)

    atomic_write_json(out_dir / "report.json", report.to_json())
    atomic_write_text(out_dir / "report.md", report.to_markdown())
    # Splits prepared by earlier runs (same settings) and not redone now stay listed: their files are there.
    previous = read_manifest(out_dir) if (out_dir / "manifest.json").is_file() else {"splits": {}}
    old_splits = {k: v for k, v in previous["splits"].items() if k not in planned}
    if train_split is None and (out_dir / "stats.json").is_file():
        stats_info = previous.get("stats")  # no training split this run: the earlier statistics stay
    entries = {
        split: {
            "episodes": [ep.key for ep in eps],
            "num_episodes": len(eps),
            "num_windows": int(sum(len(e) for e in eps)),
            "num_takes": len({e.take_uid for e in eps}),
            "egghand_list": is_egghand_split(split),
        }
        for split, eps in planned.items()
    }
    entries.update(old_splits)
    # The manifest depends only on the data and settings (feature caches fingerprint it), not on the run.
    manifest = {
        "format_version": FORMAT_VERSION,
        "raw_dir": str(raw_dir), "size": int(size), "up": [float(u) for u in up], "annotation": annotation,
        "source": source, "stats": stats_info,
        "splits": dict(sorted(entries.items())),
    }
    atomic_write_json(out_dir / "manifest.json", manifest)
    return {**manifest, "last_run": counts}


def _clear(out_dir: Path) -> None:
    import shutil

    for name in ("episodes",):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for name in ("manifest.json", "stats.json", "report.json", "report.md", "settings.json"):
        (out_dir / name).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- CLI


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw", required=True, help="EgoExo4D-layout folder (takes.json, annotations/, takes/)")
    parser.add_argument("--out", required=True, help="prepared folder to write (resumed if it exists)")
    parser.add_argument("--splits", nargs="+", default=["train", "val"],
                        help="raw splits (train val test) and/or egghand-train egghand-val (default: train val)")
    parser.add_argument("--strict", action="store_true", help="stop at the first problem instead of dropping it")
    parser.add_argument("--annotation", choices=["manual", "automatic"], default="manual",
                        help="hand annotations to read; manual falls back to automatic per take (reported)")
    parser.add_argument("--size", type=int, default=224, help="stored frame size (short-side resize + centre crop)")
    parser.add_argument("--stats-split", default=None, help="split for stats.json (default egghand-train or train)")
    parser.add_argument("--max-camera-distance", type=float, default=ValidationConfig.max_camera_distance)
    parser.add_argument("--min-hand-joints", type=int, default=ValidationConfig.min_hand_joints)
    parser.add_argument("--max-bone-length", type=float, default=ValidationConfig.max_bone_length)
    parser.add_argument("--bone-ratio", type=float, default=ValidationConfig.bone_ratio,
                        help="a bone longer than this times its median over the take is an outlier")
    parser.add_argument("--overwrite", action="store_true", help="discard a folder prepared with other settings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--lerobot", action="store_true",
                        help="also export every prepared split as a LeRobot dataset to OUT/lerobot/{split}")


def run(args: argparse.Namespace) -> int:
    cfg = ValidationConfig(max_camera_distance=args.max_camera_distance, min_hand_joints=args.min_hand_joints,
                           max_bone_length=args.max_bone_length, bone_ratio=args.bone_ratio)
    manifest = prepare_dataset(args.raw, args.out, splits=args.splits, strict=args.strict,
                               annotation=args.annotation, size=args.size, stats_split=args.stats_split,
                               validation=cfg, overwrite=args.overwrite, progress=not args.no_progress)
    for split, s in manifest["splits"].items():
        print(f"{split}: {s['num_episodes']} episodes, {s['num_windows']} windows, {s['num_takes']} takes")
    if args.lerobot:
        from egghand_lib.data.lerobot_dataset import export_lerobot_from_prepared

        for split, s in manifest["splits"].items():
            if s["num_episodes"]:
                root = Path(args.out) / "lerobot" / split
                export_lerobot_from_prepared(args.out, split, root, overwrite=True, progress=not args.no_progress)
                print(f"lerobot {split}: {root}")
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0
