"""``egghand prepare``: EgoExo4D-layout files -> a prepared folder of validated episodes.

The folder's layout and file formats are those of ``egghand_lib.data.prepared``.

Two phases: (1) read and validate every take's JSON annotations (strict mode fails here, before any
output); (2) decode each episode's video frames and write the episode atomically. A re-run skips
episodes already written, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, replace
from pathlib import Path

from tqdm.auto import tqdm

from egghand_lib.data import prepared
from egghand_lib.data.egosynth.config import check_generator_version
from egghand_lib.data.episodes import Episode, RawIndex, is_egghand_split, load_episode_frames, plan_split
from egghand_lib.data.prepared import FORMAT_VERSION, episode_digest, save_episode, stored_digest
from egghand_lib.data.statistics import compute_stats
from egghand_lib.data.validation import ValidationConfig, ValidationReport
from egghand_lib.io import (
    atomic_write_json,
    atomic_write_text,
    check_inside,
    check_name,
    claim_output_folder,
    clean_partials,
    write_settings,
)

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
    stats_edges: str = "mask",
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
    raw_dir, out_dir = Path(raw_dir).resolve(), Path(out_dir)
    splits = list(dict.fromkeys(splits))
    if not splits:
        raise ValueError("splits: empty")
    for split in splits:  # each names a folder of the output
        check_name(split, "splits")
    if out_dir.resolve() == raw_dir or out_dir.resolve() in raw_dir.parents:  # --overwrite would empty it
        raise ValueError(f"out_dir: {out_dir} holds the raw folder {raw_dir}; prepare into a folder of its own")
    if int(size) < 1:
        raise ValueError(f"size: expected a positive number of pixels, got {size}")
    cfg = replace(validation or ValidationConfig(), strict=bool(strict))
    source = prepared.source_generator(raw_dir)
    check_generator_version((source or {}).get("version"), Path(raw_dir) / "manifest.json")
    train_split = _training_split(splits, stats_split)
    settings = {"format_version": FORMAT_VERSION, "raw_dir": str(raw_dir), "annotation": annotation,
                "size": int(size), "up": [float(u) for u in up], "validation": {**asdict(cfg), "strict": None}}
    claim_output_folder(out_dir, settings, settings_name=prepared.SETTINGS_NAME, overwrite=overwrite,
                        what="prepared folder")

    # Phase 1: read + validate all annotations (strict mode stops here, before any output).
    report = ValidationReport(strict)
    index = RawIndex.read(raw_dir)
    planned: dict[str, list[Episode]] = {}
    for split in splits:
        planned[split] = plan_split(raw_dir, split, annotation, cfg, report, size, index, progress)

    # Phase 2: decode frames per take and write each episode atomically; existing files are kept (resume).
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_partials(out_dir)
    write_settings(out_dir, settings, prepared.SETTINGS_NAME)
    counts = {"written": 0, "skipped": 0, "removed_stale": 0}
    for split in splits:
        folder = prepared.episodes_dir(out_dir, split)
        folder.mkdir(parents=True, exist_ok=True)
        check_inside(out_dir, folder, "episode files")  # not through a symbolic link planted in the folder
        clean_partials(folder)
        by_take: dict[str, list[Episode]] = defaultdict(list)
        for ep in planned[split]:
            by_take[ep.take_uid].append(ep)
        kept: list[Episode] = []
        for uid, eps in tqdm(by_take.items(), desc=f"frames {split}", unit="take", disable=not progress):
            try:
                for ep in eps:
                    path = prepared.episode_path(out_dir, split, ep.key)
                    if path.is_file() and stored_digest(path) == episode_digest(ep):
                        counts["skipped"] += 1
                        continue
                    load_episode_frames(ep, size)
                    save_episode(ep, path)
                    ep.frames = None  # keep memory flat; the file holds them now
                    counts["written"] += 1
            except (FileNotFoundError, ValueError) as e:
                report.drop_take(uid, "missing_video", ep.video_path, str(e))  # raises in strict mode
                for other in eps:
                    prepared.episode_path(out_dir, split, other.key).unlink(missing_ok=True)
                continue
            kept += eps
        planned[split] = kept
        wanted = {prepared.episode_path(out_dir, split, ep.key).name for ep in kept}
        for p in folder.glob(f"*{prepared.EPISODE_SUFFIX}"):
            if p.name not in wanted:  # from an earlier run whose take is now dropped
                p.unlink()
                counts["removed_stale"] += 1

    # Statistics of the training split (canonical, valid joints only), from the arrays in memory.
    stats_info = None
    if train_split is not None and not planned[train_split]:
        prepared.stats_path(out_dir).unlink(missing_ok=True)  # an empty training split has no statistics
    if train_split is not None and planned[train_split]:
        stats = compute_stats(planned[train_split], stats_protocol, up, stats_edges)
        stats_info = {"split": train_split, "protocol": stats_protocol, "edges": stats_edges,
                      "windows": int(sum(len(e) for e in planned[train_split]))}
        prepared.write_stats(out_dir, stats, **stats_info)

    atomic_write_json(out_dir / prepared.REPORT_JSON, report.to_json())
    atomic_write_text(out_dir / prepared.REPORT_MD, report.to_markdown())
    # Splits prepared by earlier runs (same settings) and not redone now stay listed: their files are there.
    previous = prepared.read_manifest(out_dir) if prepared.manifest_path(out_dir).is_file() else {"splits": {}}
    old_splits = {k: v for k, v in previous["splits"].items() if k not in planned}
    if train_split is None and prepared.stats_path(out_dir).is_file():
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
    prepared.write_manifest(out_dir, manifest)
    return {**manifest, "last_run": counts}


