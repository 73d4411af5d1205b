"""Training step time: cached encoder features vs encoding in the loop, same decoder, same model object.

The encoder is EgoVideo's architecture (egghand_lib.models.encoders.egovideo: the 40-block, width-1408
video ViT on 4 x 224 x 224 frames and the 19-layer BERT-large text tower) at random weights, frozen as
in the paper. The decoder is the cpu-small EggHand decoder (adapters + width-128 GR00T head) taking
EgoVideo's 1408-d CLS token and 512-d text tokens. One optimizer step = forward (4-step differentiable
Euler rollout) + backward + AdamW + clipping.

- cached: the batch carries the encoder's features (what the feature cache stores), so the encoder is
  skipped; measured over many steps.
- in the loop: the batch carries frames and prompts, so every step runs the frozen encoder first; on
  2 CPU cores the full ViT takes minutes per clip, so only a few steps are measured (--loop-steps).
``--vit-depth`` / ``--frames`` reduce the encoder; any such run is labelled REDUCED in the output.

    python bench/train_speed.py                 # full EgoVideo size, batch 1, 2 in-loop steps
    python bench/train_speed.py --tiny          # a tiny EgoVideo-shaped encoder, seconds (CI)
"""

from __future__ import annotations

import argparse

from _common import machine_notes, max_rss_mb, median, print_figures, setup_env

TARGET_SPEEDUP = 10.0
PROMPTS = ("pick up the red mug and lift it", "pour from the blue bottle into the cup")
TINY_EGOVIDEO = dict(image_size=28, patch_size=14, width=32, depth=1, heads=2, mlp_dim=64, pool_heads=2, pool_dim=32,
                     embed_dim=16, text_width=32, text_layers=1, text_heads=2, text_mlp_dim=64)


def make_batch(b: int, image_size: int, seed: int = 0) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    return {
        "past_joints": torch.randn(b, 20, 42, 3, generator=g) * 0.2,
        "past_valid": torch.rand(b, 20, 42, generator=g) > 0.1,
        "past_extrinsics": torch.randn(b, 20, 3, 4, generator=g),
        "future_joints": torch.randn(b, 10, 42, 3, generator=g) * 0.2,
        "future_valid": torch.rand(b, 10, 42, generator=g) > 0.1,
        "frames": torch.randint(0, 256, (b, 4, 3, image_size, image_size), generator=g, dtype=torch.uint8),
        "task": [PROMPTS[i % len(PROMPTS)] for i in range(b)],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny EgoVideo-shaped encoder and tiny decoder (CI)")
    ap.add_argument("--batch", type=int, default=1, help="windows per step (default 1)")
    ap.add_argument("--cached-steps", type=int, default=None, help="timed steps with cached features (default 20)")
    ap.add_argument("--loop-steps", type=int, default=None, help="timed steps with the encoder in the loop (default 2)")
    ap.add_argument("--vit-depth", type=int, default=None, help="REDUCED run: ViT blocks (full: 40)")
    ap.add_argument("--frames", type=int, default=None, help="REDUCED run: frames per clip (full: 4)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    setup_env(args.threads or (1 if args.tiny else None))
    import time

    import torch

    from egghand_lib.batch import NormStats
    from egghand_lib.models.egghand import EggHandConfig, EggHandPolicy
    from egghand_lib.models.encoders.egovideo import (
        EgoVideoConfig,
        EgoVideoEncoder,
        EgoVideoModel,
        load_bert_uncased_tokenizer,
    )

    cached_steps = args.cached_steps or (3 if args.tiny else 20)
    loop_steps = args.loop_steps or 2
    over = dict(TINY_EGOVIDEO) if args.tiny else {}
    if args.vit_depth is not None:
        over["depth"] = args.vit_depth
    if args.frames is not None:
        over["num_frames"] = args.frames
    reduced = bool(over)
    cfg = EgoVideoConfig(**{**EgoVideoConfig().__dict__, **over})

    torch.manual_seed(0)
    t0 = time.perf_counter()
    encoder = EgoVideoEncoder(EgoVideoModel(cfg), load_bert_uncased_tokenizer(None, cfg.vocab_size))
    build_s = time.perf_counter() - t0
    enc_params = sum(p.numel() for p in encoder.parameters())
    stats = NormStats(-torch.ones(138), torch.ones(138), -torch.ones(126), torch.ones(126))
    dec_cfg = EggHandConfig.preset("tiny" if args.tiny else "cpu-small", encoder="egovideo",
                                   video_dim=encoder.video_dim, text_dim=encoder.text_dim)
    model = EggHandPolicy(dec_cfg, stats=stats, encoder=encoder)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step(batch: dict) -> None:
        out = model(batch)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    # frames are stored at 224 px; the encoder resizes to its own input size (224 for the real model)
    batch = make_batch(args.batch, 224 if not args.tiny else 64)
    if cfg.num_frames != 4:
        batch["frames"] = batch["frames"][:, : cfg.num_frames]

    # The features a cache would hold for this batch (one encoder pass, timed: the one-off cost per window).
    t0 = time.perf_counter()
    with torch.no_grad():
        enc_out = encoder(batch["frames"], list(batch["task"]))
    encode_s = time.perf_counter() - t0
    cached = {**{k: v for k, v in batch.items() if k not in ("frames", "task")},
              "video_tokens": enc_out.video_tokens, "video_mask": enc_out.video_mask,
              "text_tokens": enc_out.text_tokens, "text_mask": enc_out.text_mask}

    step(cached)  # warm-up (allocations, lazy init)
    times_cached = []
    for _ in range(cached_steps):
        t0 = time.perf_counter()
        step(cached)
        times_cached.append(time.perf_counter() - t0)
    times_loop = []
    for _ in range(loop_steps):
        t0 = time.perf_counter()
        step(batch)
        times_loop.append(time.perf_counter() - t0)

    cached_s, loop_s = median(times_cached), median(times_loop)
    figs = {
        "batch": args.batch,
        "encoder_params_m": enc_params / 1e6,
        "trainable_params_m": trainable / 1e6,
        "encoder_build_s": build_s,
        "encoder_forward_s_per_window": encode_s / args.batch,
        "cached_step_s": cached_s,
        "loop_step_s": loop_s,
        "speedup_cached_vs_loop": loop_s / cached_s,
        "peak_rss_mb": max_rss_mb(),
    }
    label = "REDUCED encoder " + str(over) if reduced else "full EgoVideo size (40 blocks, width 1408, 4 frames)"
    notes = machine_notes() + [
        f"encoder: {label}, random weights, frozen; decoder preset {dec_cfg.preset_name}",
        f"steps timed: cached {cached_steps} (median), in the loop {loop_steps} (median), batch {args.batch}",
        f"target: speedup_cached_vs_loop >= {TARGET_SPEEDUP:g}x for an encoder of EgoVideo's size "
        f"({figs['speedup_cached_vs_loop']:.1f}x{'; REDUCED run, not the target setting' if reduced else ''})",
    ]
    print_figures(figs, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
