"""``egghand pretrain {encoder,head,recipe,twin}``: the offline foundation stack (EgoVideo-mini, the GR00T-mini head).

    egghand pretrain encoder --prep PREP --raw EGOSYNTH --out RUN [--val-prep VPREP --val-raw VEGOSYNTH] [--steps N]
    egghand pretrain head --prep PREP --encoder RUN/model --out RUN [--steps N]
    egghand pretrain recipe --work DIR [--install]       # everything, the way the shipped weights were made
    egghand pretrain twin --work DIR [--install]         # EggHand-mini's random-head twin alone (shipped encoder)
"""

from __future__ import annotations

import argparse

from egghand_lib.models.encoders.egovideo_mini import EgoVideoMiniConfig
from egghand_lib.pretraining.encoder import EncoderPretrainConfig, pretrain_encoder
from egghand_lib.pretraining.head import head_pretrain_config, pretrain_head
from egghand_lib.pretraining.recipe import RecipeConfig, install_weights, make_foundation_stack, make_random_head_twin


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    enc = sub.add_parser("encoder", help="pretrain EgoVideo-mini on a prepared EgoSynth folder")
    enc.add_argument("--prep", required=True, help="prepared EgoSynth folder (its train split; its val split too "
                                                   "unless --val-prep)")
    enc.add_argument("--raw", required=True, help="the EgoSynth folder it was prepared from (its ground truth)")
    enc.add_argument("--val-prep", help="prepared EgoSynth folder of validation takes generated apart (val split)")
    enc.add_argument("--val-raw", help="the EgoSynth folder --val-prep was prepared from")
    enc.add_argument("--out", required=True, help="run folder; the encoder is OUT/model")
    enc.add_argument("--steps", type=int, default=EncoderPretrainConfig.steps)
    enc.add_argument("--batch-size", type=int, default=EncoderPretrainConfig.batch_size)
    enc.add_argument("--image-size", type=int, default=EgoVideoMiniConfig.image_size,
                     help="frames are resized to this (a multiple of 16)")
    enc.add_argument("--seed", type=int, default=0)
    head = sub.add_parser("head", help="pretrain the cpu-small GR00T head with GR00T's flow objective")
    head.add_argument("--prep", required=True, help="prepared data of other seeds than the fine-tuning data's")
    head.add_argument("--encoder", required=True, help="a frozen EgoVideo-mini folder (pretrain encoder's OUT/model)")
    head.add_argument("--out", required=True, help="run folder; the head is OUT/gr00t_head (GR00T layout)")
    head.add_argument("--steps", type=int, default=3000)
    head.add_argument("--seed", type=int, default=0)
    rec = sub.add_parser("recipe", help="data, encoder, head and EggHand-mini from nothing")
    rec.add_argument("--work", required=True, help="work folder (every stage resumable)")
    rec.add_argument("--install", action="store_true", help="copy the results into the package's shipped weights")
    rec.add_argument("--encoder-steps", type=int, default=RecipeConfig.encoder_steps)
    rec.add_argument("--head-steps", type=int, default=RecipeConfig.head_steps)
    rec.add_argument("--mini-steps", type=int, default=RecipeConfig.mini_steps)
    twin = sub.add_parser("twin", help="EggHand-mini's fine-tune from a random head (Table 5), shipped encoder")
    twin.add_argument("--work", required=True, help="work folder (resumable)")
    twin.add_argument("--install", action="store_true", help="copy the result into the package's shipped weights")
    twin.add_argument("--steps", type=int, default=RecipeConfig.mini_steps)
    for p in (enc, head, rec, twin):
        p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    progress = not args.no_progress
    if args.what == "encoder":
        cfg = EncoderPretrainConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                                    encoder={"image_size": args.image_size})
        if (args.val_prep is None) != (args.val_raw is None):
            raise ValueError("--val-prep and --val-raw go together (the validation takes and their ground truth)")
        result = pretrain_encoder(cfg, args.prep, args.raw, args.out, val_prep_dir=args.val_prep,
                                  val_raw_dir=args.val_raw, progress=progress)
        print(f"[pretrain] EgoVideo-mini: {result.out_dir / 'model'}")
    elif args.what == "head":
        cfg = head_pretrain_config(args.steps, feature_cache="auto", seed=args.seed)
        cfg = cfg.replace(model_overrides={**cfg.model_overrides, "encoder": "egovideo-mini",
                                           "encoder_kwargs": {"checkpoint": args.encoder}})
        _, folder = pretrain_head(cfg, args.prep, args.out, progress=progress)
        print(f"[pretrain] GR00T-layout head: {folder}")
    elif args.what == "twin":
        out = make_random_head_twin(args.work, args.steps, progress=progress)
        print(f"[pretrain] random-head twin: {out['egghand_mini_random_head']}")
        if args.install:
            _install(out)
    else:
        cfg = RecipeConfig(encoder_steps=args.encoder_steps, head_steps=args.head_steps, mini_steps=args.mini_steps)
        out = make_foundation_stack(args.work, cfg, progress=progress)
        for name, folder in out.items():
            print(f"[pretrain] {name}: {folder}")
        if args.install:
            _install(out)
    return 0


def _install(out: dict) -> None:
    for name, files in install_weights(out).items():
        print(f"[pretrain] installed {name}: " + ", ".join(f"{f} sha256 {h[:16]}" for f, h in files.items()))
