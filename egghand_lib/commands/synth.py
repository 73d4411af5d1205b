"""``egghand synth --out DIR --preset NAME --seed S [--overwrite]``: generate an EgoSynth dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from egghand_lib.data.egosynth import PRESETS, generate_egosynth


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output folder (EgoExo4D layout)")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="size preset")
    parser.add_argument("--seed", default=0, type=int, help="random seed (generation is deterministic)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: the preset's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    overrides = {} if args.workers is None else {"workers": args.workers}
    out = generate_egosynth(args.out, preset=args.preset, seed=args.seed, overwrite=args.overwrite,
                            progress=not args.no_progress, **overrides)
    manifest = json.loads((out / "manifest.json").read_text())
    print(f"EgoSynth ({args.preset}, seed {args.seed}): {manifest['num_takes']} takes in {out}")
    return 0
