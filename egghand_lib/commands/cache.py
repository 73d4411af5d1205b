"""``egghand cache --prep PREP --out CACHE``: one frozen-encoder feature cache per split, in the layout
``egghand train --feature-cache`` reads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from egghand_lib.data.feature_cache import build_feature_cache
from egghand_lib.data.prepared import manifest_digest
from egghand_lib.data.windows import EDGES, WindowDataset
from egghand_lib.io import check_name, claim_command_folder
from egghand_lib.models.encoders import build_encoder


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prep", required=True, help="prepared data folder (egghand prepare --out)")
    parser.add_argument("--out", required=True, help="cache folder; one sub-folder per split")
    parser.add_argument("--splits", nargs="+", default=["train", "val"])
    parser.add_argument("--protocol", default="future", choices=["future", "egghand-code"])
    parser.add_argument("--edges", default="mask", choices=list(EDGES),
                        help="episode edges: mask (default), pad (official EggHand), complete (EgoH4)")
    parser.add_argument("--encoder", default="egovideo", help="a frozen encoder: egovideo or internvl")
    parser.add_argument("--checkpoint", help="EgoVideo ckpt_4frames.pth")
    parser.add_argument("--model-dir", help="InternVL3.5-1B-HF directory")
    parser.add_argument("--tokenizer",
                        help="EgoVideo: bert-large-uncased vocab.txt (default: the copy shipped offline)")
    parser.add_argument("--video-output", choices=["cls", "all", "pooled"],
                        help="EgoVideo video tokens: cls (EggHand's, default), all patch tokens, or the pooled one")
    parser.add_argument("--encoder-config", metavar="JSON",
                        help="EgoVideo: a JSON object of EgoVideoConfig fields, for a checkpoint of another size")
    parser.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--fp16", action="store_true", help="store features as float16")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUT if it holds caches of another encoder or data, or other files")
    parser.add_argument("--no-progress", action="store_true")


def _read_encoder_config(path: Path) -> dict:
    """The --encoder-config file: a JSON object of the encoder's config fields."""
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"--encoder-config: no file {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"--encoder-config: {path} is not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"--encoder-config: {path} must hold a JSON object of config fields, got {type(cfg).__name__}")
    return cfg


def settings_of(args: argparse.Namespace, encoder_config: dict | None) -> dict:
    """What the caches in OUT depend on (splits may be added later: each split's cache checks its own inputs)."""
    def _abs(p: str | None) -> str | None:
        return str(Path(p).resolve()) if p else None

    return {"prep_manifest_sha256": manifest_digest(args.prep), "protocol": args.protocol, "edges": args.edges,
            "encoder": args.encoder,
            "checkpoint": _abs(args.checkpoint), "model_dir": _abs(args.model_dir), "tokenizer": _abs(args.tokenizer),
            "video_output": args.video_output, "encoder_config": encoder_config, "fp16": args.fp16}


def run(args: argparse.Namespace) -> int:
    for split in args.splits:
        check_name(split, "--splits")  # each names a folder of OUT
    encoder_config = _read_encoder_config(Path(args.encoder_config)) if args.encoder_config else None
    claim_command_folder(args.out, "cache", settings_of(args, encoder_config), overwrite=args.overwrite)
    kwargs: dict[str, Any] = {"checkpoint": args.checkpoint} if args.checkpoint else {}
    if args.model_dir:
        kwargs["model_dir"] = args.model_dir
    if args.tokenizer:
        kwargs["tokenizer_path"] = args.tokenizer
    if args.video_output:
        kwargs["video_output"] = args.video_output
    if encoder_config is not None:
        kwargs["config"] = encoder_config
    encoder = build_encoder(args.encoder, **kwargs)
    if not getattr(encoder, "frozen", False):
        raise ValueError(f"--encoder {args.encoder}: only frozen encoders can be cached")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    encoder.to(device)
    for split in args.splits:
        ds = WindowDataset(args.prep, split, protocol=args.protocol, edges=args.edges)
        cache = build_feature_cache(encoder, ds, Path(args.out) / split, batch_size=args.batch_size,
                                    progress=not args.no_progress,
                                    store_dtype=torch.float16 if args.fp16 else None, overwrite=args.overwrite)
        print(f"[cache] {split}: {len(cache)} windows -> {cache.cache_dir}")
    return 0
