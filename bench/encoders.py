"""Encoder speed on the CPU: the offline encoder's per-step cost and its text cache; EgoVideo per clip.

- offline video CNN: forward + backward at batch B (default 64) on 224 px uint8 frames, wall time and
  CPU time (CPU time is less sensitive to other processes on a shared machine), and the resize share;
- offline MiniLM text: a cold prompt (encoded once, then cached) and a fully cached batch;
- EgoVideo: one clip through a small random instance (always), and with --egovideo-full through the
  full-size model with random weights (about 5 GB of RAM, ~70 s per clip on 2 cores: cache its features).

    python bench/encoders.py                 # batch 64, 5 repeats
    python bench/encoders.py --tiny          # seconds (CI)
    python bench/encoders.py --egovideo-full
"""

from __future__ import annotations

import argparse
import time

from _common import machine_notes, median, print_figures, setup_env, time_calls

TARGET_VIDEO_STEP_S = 0.2  # offline video CNN forward + backward at batch 64 on 2 cores


def cpu_seconds(fn, n: int) -> float:
    """Median CPU time (all threads of this process) of fn()."""
    out = []
    for _ in range(n):
        t0 = time.process_time()
        fn()
        out.append(time.process_time() - t0)
    return median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=224, help="input frame size (H = W)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--egovideo-full", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="batch 8, 2 repeats (CI smoke run)")
    args = ap.parse_args()
    if args.tiny:
        args.batch, args.repeats = 8, 2
    setup_env(args.threads)
    import torch

    from egghand_lib.models.encoders import build_encoder
    from egghand_lib.models.encoders.egovideo import EgoVideoConfig, EgoVideoModel

    enc = build_encoder("offline")
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (args.batch, 4, 3, args.size, args.size), generator=g, dtype=torch.uint8)
    prompts = [f"task number {i % 20}: cut the vegetables" for i in range(args.batch)]

    def video_step():
        tokens, _ = enc.encode_video(frames)
        tokens.square().mean().backward()

    step_s = median(time_calls(video_step, args.repeats, warmup=1))
    step_cpu_s = cpu_seconds(video_step, args.repeats)
    resize_s = median(time_calls(lambda: enc.video.preprocess(frames), args.repeats, warmup=1))
    enc.text.clear_cache()
    t0 = time.perf_counter()
    enc.encode_text(prompts)  # 20 unique prompts, each encoded once
    cold_ms_per_prompt = (time.perf_counter() - t0) * 1e3 / len(set(prompts))
    cached_ms = median(time_calls(lambda: enc.encode_text(prompts), args.repeats, warmup=1)) * 1e3

    small = EgoVideoConfig(image_size=56, width=64, depth=2, heads=4, mlp_dim=128, pool_heads=4, pool_dim=32,
                           embed_dim=32, text_width=64, text_layers=2, text_heads=4, text_mlp_dim=128)
    ego = EgoVideoModel(small).eval()
    with torch.no_grad():
        ego_small_s = median(time_calls(lambda: ego.video_tokens(torch.randn(1, 3, 4, 56, 56)), args.repeats, 1))
    figures = {
        "offline_video_step_s": step_s,
        "offline_video_step_cpu_s": step_cpu_s,
        "offline_resize_s": resize_s,
        "offline_video_params_m": sum(p.numel() for p in enc.video.parameters()) / 1e6,
        "offline_text_cold_ms_per_prompt": cold_ms_per_prompt,
        "offline_text_cached_batch_ms": cached_ms,
        "egovideo_small_clip_s": ego_small_s,
    }
    if args.egovideo_full:
        full = EgoVideoModel(EgoVideoConfig()).eval()
        with torch.no_grad():
            figures["egovideo_full_clip_s"] = median(
                time_calls(lambda: full.video_tokens(torch.randn(1, 3, 4, 224, 224)), 1, warmup=0))
    notes = machine_notes() + [
        f"offline video CNN: batch {args.batch}, {args.size} px uint8 frames -> {enc.num_video_tokens} tokens x "
        f"{enc.video_dim}; target forward+backward < {TARGET_VIDEO_STEP_S} s at batch 64 on 2 idle cores",
    ]
    print_figures(figures, notes)


if __name__ == "__main__":
    main()
