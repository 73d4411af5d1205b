"""``egghand demo [--quick]``: end to end on the built-in defaults (synth, prepare, train, evaluate, ablate)."""

from __future__ import annotations

import argparse

from egghand_lib.demo import run_demo


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="egghand_demo", help="demo folder (default: ./egghand_demo)")
    parser.add_argument("--quick", action="store_true", help="tiny data and model: a smoke test in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="override the number of training steps")
    parser.add_argument("--overwrite", action="store_true", help="start over if OUT holds another demo")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    over = {"max_steps": args.steps} if args.steps else {}
    out = args.out if not (args.quick and args.out == "egghand_demo") else "egghand_demo_quick"
    run_demo(out, quick=args.quick, seed=args.seed, progress=not args.no_progress, train_overrides=over,
             overwrite=args.overwrite)
    return 0
