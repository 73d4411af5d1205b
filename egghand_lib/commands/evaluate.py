"""``egghand evaluate --prep PREP --out RESULTS [--model RUN]``: Static, CVM and a trained model on a split.

``--lerobot DIR`` instead of ``--prep`` reads the split from LeRobot datasets (``DIR/{split}``, see ``egghand train``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from egghand_lib.data.prepared import manifest_digest
from egghand_lib.data.windows import EDGES
from egghand_lib.evaluation import evaluate, summary_line
from egghand_lib.io import claim_command_folder
from egghand_lib.models.egghand.modeling_egghand import SHIPPED_MINI_NAME


def configure_parser(parser: argparse.ArgumentParser) -> None:
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--prep", help="prepared data folder")
    data.add_argument("--lerobot", metavar="DIR", help="LeRobot datasets by split, DIR/{split} (PREP/lerobot)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", help="training run folder, saved model folder, or egghand-mini (the model shipped "
                                        "in the package); omit for baselines only")
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--protocol", default="future", choices=["future", "egghand-code"])
    parser.add_argument("--edges", default="mask", choices=list(EDGES),
                        help="episode edges: mask (default), pad (official EggHand), complete (EgoH4)")
    parser.add_argument("--train-split", default="train", help="split the Static pose is fitted on")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=0, help="K sampled forecasts per window (best-of-K, spread)")
    parser.add_argument("--max-windows", type=int, help="evaluate an evenly spaced subset")
    parser.add_argument("--group-key", default="scenario", help="per-group table key: scenario or task")
    parser.add_argument("--feature-cache", help="precomputed encoder features (egghand cache --out)")
    parser.add_argument("--device")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it holds other results or files")
    parser.add_argument("--no-progress", action="store_true")


def _model_id(model: str | None) -> str | None:
    if model is None or model == SHIPPED_MINI_NAME:
        return model
    return str(Path(model).resolve())


def settings_of(args: argparse.Namespace) -> dict:
    """What the results in OUT depend on (another evaluation is refused there without --overwrite)."""
    if args.prep is not None:
        data = {"prep": str(Path(args.prep).resolve()), "prep_manifest_sha256": manifest_digest(args.prep)}
    else:
        data = {"lerobot": str(Path(args.lerobot).resolve())}
    return {**data, "split": args.split, "model": _model_id(args.model),
            "protocol": args.protocol, "edges": args.edges, "train_split": args.train_split, "samples": args.samples,
            "max_windows": args.max_windows, "group_key": args.group_key,
            "feature_cache": str(Path(args.feature_cache).resolve()) if args.feature_cache else None}


def run(args: argparse.Namespace) -> int:
    claim_command_folder(args.out, "evaluate", settings_of(args), overwrite=args.overwrite)
    res = evaluate(args.prep, args.split, args.model, args.out, protocol=args.protocol, edges=args.edges,
                   train_split=args.train_split,
                   batch_size=args.batch_size, num_samples=args.samples, max_windows=args.max_windows,
                   group_key=args.group_key, device=args.device, progress=not args.no_progress,
                   feature_cache=args.feature_cache, lerobot_dir=args.lerobot)
    print(summary_line(res))
    print(f"[evaluate] results in {args.out}")
    return 0
