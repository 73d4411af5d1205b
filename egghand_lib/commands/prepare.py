"""``egghand prepare --raw DIR --out PREP``: EgoExo4D-layout files -> a prepared folder (and LeRobot datasets)."""

from __future__ import annotations

import argparse
from pathlib import Path

from egghand_lib.batch import TARGET_OFFSETS
from egghand_lib.data.lerobot_dataset import export_lerobot_from_prepared
from egghand_lib.data.prepare import prepare_dataset
from egghand_lib.data.validation import ValidationConfig
from egghand_lib.data.windows import EDGES


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
    parser.add_argument("--protocol", default="future", choices=list(TARGET_OFFSETS),
                        help="target protocol of the windows the statistics are computed over")
    parser.add_argument("--edges", default="mask", choices=list(EDGES),
                        help="episode edges of those windows: mask (default), pad (official EggHand), complete (EgoH4)")
    parser.add_argument("--max-camera-distance", type=float, default=ValidationConfig.max_camera_distance)
    parser.add_argument("--min-hand-joints", type=int, default=ValidationConfig.min_hand_joints)
    parser.add_argument("--max-bone-length", type=float, default=ValidationConfig.max_bone_length)
    parser.add_argument("--bone-ratio", type=float, default=ValidationConfig.bone_ratio,
                        help="a bone longer than this times its median over the take is an outlier")
    parser.add_argument("--max-camera-translation", type=float, default=ValidationConfig.max_camera_translation,
                        help="metres: a camera farther from the world origin has bad extrinsics")
    parser.add_argument("--max-camera-speed", type=float, default=ValidationConfig.max_camera_speed,
                        help="m/s: a frame whose camera jumps away from both neighbours faster has bad extrinsics")
    parser.add_argument("--overwrite", action="store_true", help="discard a folder prepared with other settings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--lerobot", action="store_true",
                        help="also export every prepared split as a LeRobot dataset to OUT/lerobot/{split}")


def run(args: argparse.Namespace) -> int:
    cfg = ValidationConfig(max_camera_distance=args.max_camera_distance, min_hand_joints=args.min_hand_joints,
                           max_bone_length=args.max_bone_length, bone_ratio=args.bone_ratio,
                           max_camera_translation=args.max_camera_translation, max_camera_speed=args.max_camera_speed)
    manifest = prepare_dataset(args.raw, args.out, splits=args.splits, strict=args.strict,
                               annotation=args.annotation, size=args.size, stats_split=args.stats_split,
                               stats_protocol=args.protocol, stats_edges=args.edges,
                               validation=cfg, overwrite=args.overwrite, progress=not args.no_progress)
    for split, s in manifest["splits"].items():
        print(f"{split}: {s['num_episodes']} episodes, {s['num_windows']} windows, {s['num_takes']} takes")
    if args.lerobot:
        for split, s in manifest["splits"].items():
            if s["num_episodes"]:
                root = Path(args.out) / "lerobot" / split
                export_lerobot_from_prepared(args.out, split, root, overwrite=True, progress=not args.no_progress)
                print(f"lerobot {split}: {root}")
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0
