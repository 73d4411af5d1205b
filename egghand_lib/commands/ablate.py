"""``egghand ablate --prep PREP --out RESULTS [--model RUN] [--which ...]``: the paper's ablations (Tables 2-5)."""

from __future__ import annotations

import argparse
from pathlib import Path

from egghand_lib.ablations import ABLATIONS, DEFAULT_ABLATIONS, ablations_markdown, run_ablations, shipped_head_models
from egghand_lib.data.prepared import manifest_digest
from egghand_lib.data.windows import EDGES
from egghand_lib.io import claim_command_folder


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prep", required=True, help="prepared data folder")
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--model", help="trained run / model folder (omit: train one with --config)")
    parser.add_argument("--which", nargs="+", default=list(DEFAULT_ABLATIONS), choices=list(ABLATIONS) + ["all"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--protocol", default="future", choices=["future", "egghand-code"])
    parser.add_argument("--edges", default="mask", choices=list(EDGES),
                        help="episode edges: mask (default), pad (official EggHand), complete (EgoH4)")
    parser.add_argument("--config", default="cpu-small", help="training config for retrained variants")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-windows", type=int)
    parser.add_argument("--egovideo", help="EgoVideo ckpt_4frames.pth (encoder ablation; also re-encodes the "
                        "corrupted frames of a model trained on cached EgoVideo features)")
    parser.add_argument("--internvl", help="InternVL3.5-1B-HF directory (encoder ablation)")
    parser.add_argument("--gr00t", help="GR00T-N1.5-3B directory (head-init ablation)")
    parser.add_argument("--shipped-heads", action="store_true",
                        help="head-init ablation without training: the shipped EggHand-mini vs its random-head twin")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it holds other results or files")
    parser.add_argument("--no-progress", action="store_true")


def _abs(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def settings_of(args: argparse.Namespace) -> dict:
    """What the results and retrained runs in OUT depend on (--which may grow between runs: the runs resume)."""
    return {"prep": _abs(args.prep), "prep_manifest_sha256": manifest_digest(args.prep), "model": _abs(args.model),
            "split": args.split, "train_split": args.train_split, "protocol": args.protocol, "edges": args.edges,
            "config": args.config,
            "seed": args.seed, "max_windows": args.max_windows, "egovideo": _abs(args.egovideo),
            "internvl": _abs(args.internvl), "gr00t": _abs(args.gr00t),
            # only when set, so a folder of an earlier run without the option still resumes
            **({"shipped_heads": True} if args.shipped_heads else {})}


def run(args: argparse.Namespace) -> int:
    claim_command_folder(args.out, "ablate", settings_of(args), overwrite=args.overwrite)
    which = list(ABLATIONS) if "all" in args.which else args.which
    res = run_ablations(args.prep, args.out, args.model, which=which, split=args.split, train_split=args.train_split,
                        protocol=args.protocol, edges=args.edges, train_config=args.config, seed=args.seed,
                        batch_size=args.batch_size,
                        max_windows=args.max_windows, egovideo_path=args.egovideo, internvl_path=args.internvl,
                        gr00t_path=args.gr00t, progress=not args.no_progress,
                        head_models=shipped_head_models() if args.shipped_heads else None)
    print(ablations_markdown(res))
    print(f"[ablate] results in {args.out}")
    return 0
