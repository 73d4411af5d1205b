"""``egghand train --prep PREP --out RUN --config NAME``: train an EggHand model from a named config.

Flags override the named ``TrainConfig``; ``--set FIELD=VALUE`` reaches any of its fields and
``--model-set FIELD=VALUE`` any ``EggHandConfig`` field (values are JSON, else plain strings).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from egghand_lib.data.windows import EDGES
from egghand_lib.training import TRAIN_CONFIGS, TrainConfig, train


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prep", required=True, help="prepared data folder (egghand prepare --out)")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, metrics.csv, model/)")
    parser.add_argument("--config", default="cpu-small", choices=sorted(TRAIN_CONFIGS), help="named config")
    parser.add_argument("--steps", type=int, help="optimizer steps (overrides epochs)")
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--grad-accum", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--protocol", choices=["future", "egghand-code"])
    parser.add_argument("--edges", choices=list(EDGES),
                        help="episode edges: mask (default), pad (official EggHand), complete (EgoH4)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="any TrainConfig field (JSON value), e.g. --set eval_every=100")
    parser.add_argument("--model-set", action="append", default=[], metavar="FIELD=VALUE",
                        help="EggHandConfig override (JSON value), e.g. --model-set decoder_init='\"random\"'")
    parser.add_argument("--feature-cache", help="folder of precomputed encoder features (egghand cache --out)")
    parser.add_argument("--egovideo", help="EgoVideo ckpt_4frames.pth (encoder='egovideo' configs)")
    parser.add_argument("--gr00t", help="GR00T-N1.5-3B directory: initialise the action head from its weights")
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    parser.add_argument("--no-progress", action="store_true")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The named config with the command line's overrides applied."""
    over: dict[str, Any] = {}
    for arg, key in (("steps", "max_steps"), ("epochs", "epochs"), ("lr", "lr"), ("batch_size", "batch_size"),
                     ("grad_accum", "grad_accum_steps"), ("seed", "seed"), ("protocol", "protocol"),
                     ("edges", "edges")):
        if getattr(args, arg, None) is not None:
            over[key] = getattr(args, arg)
    if getattr(args, "epochs", None) is not None and getattr(args, "steps", None) is None:
        over["max_steps"] = None
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set: expected FIELD=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        over[k] = _parse_value(v)
    cfg = TrainConfig.named(args.config, **over)
    model_over = dict(cfg.model_overrides)
    for item in args.model_set:
        if "=" not in item:
            raise ValueError(f"--model-set: expected FIELD=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        model_over[k] = _parse_value(v)
    if getattr(args, "egovideo", None):
        model_over["encoder_kwargs"] = {**model_over.get("encoder_kwargs", {}), "checkpoint": args.egovideo}
    if getattr(args, "gr00t", None):
        model_over.update(decoder_init="gr00t", gr00t_path=args.gr00t)
    extra = {"feature_cache": args.feature_cache} if getattr(args, "feature_cache", None) else {}
    return cfg.replace(model_overrides=model_over, **extra)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    result = train(cfg, args.out, prep_dir=args.prep, resume=not args.no_resume, progress=not args.no_progress)
    print(f"[train] {result.step}/{result.total_steps} steps; model: {result.model_dir}")
    if result.eval_metrics:
        print("[train] validation: " + ", ".join(f"{k}={v:.4f}" for k, v in result.eval_metrics.items()))
    return 0
