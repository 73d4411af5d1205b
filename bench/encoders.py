"""Encoder speed on CPU: the offline encoder's training step cost and the text cache.

    python bench/bench_encoders.py [--batch 64] [--threads 2] [--size 224] [--egovideo-full]

Prints median wall times. --egovideo-full also times one clip through a randomly initialised full-size
EgoVideo (about 5 GB of RAM; ~70 s per clip on 2 cores), which is why its features should be cached.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def _median_time(fn, repeats: int) -> float:
    """Median wall time of fn(); on a shared machine also compare _cpu_time (load-independent)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _cpu_time(fn, repeats: int) -> float:
    """Median CPU time (all threads) of fn(): ~ wall x threads on an idle machine."""
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=224, help="input frame size (H = W)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--egovideo-full", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from egghand_lib.models.encoders import build_encoder

    enc = build_encoder("offline")
    frames = torch.randint(0, 256, (args.batch, 4, 3, args.size, args.size), dtype=torch.uint8)
    prompts = [f"Task number {i % 20}: cut the vegetables." for i in range(args.batch)]

    def video_step():
        tokens, _ = enc.encode_video(frames)
        tokens.square().mean().backward()

    video_step()  # warm-up
    t_video = _median_time(video_step, args.repeats)
    cpu_video = _cpu_time(video_step, args.repeats)
    t_pre = _median_time(lambda: enc.video.preprocess(frames), args.repeats)
    enc.text.clear_cache()
    t_text_cold = _median_time(lambda: (enc.text.clear_cache(), enc.encode_text(prompts)), 1)
    t_text_warm = _median_time(lambda: enc.encode_text(prompts), args.repeats)
    n_params = sum(p.numel() for p in enc.video.parameters())
    print(f"offline video CNN ({n_params / 1e6:.2f} M params, {enc.num_video_tokens} tokens x {enc.video_dim}): "
          f"forward+backward batch {args.batch} @ {args.size}px, {args.threads} threads: {t_video * 1e3:.0f} ms "
          f"(of which resize/normalise {t_pre * 1e3:.0f} ms); CPU time {cpu_video * 1e3:.0f} ms")
    print(f"offline MiniLM text, batch {args.batch} with 20 unique prompts: cold {t_text_cold * 1e3:.0f} ms, "
          f"cached {t_text_warm * 1e3:.1f} ms")

    if args.egovideo_full:
        from egghand_lib.models.encoders.egovideo import EgoVideoConfig, EgoVideoModel

        model = EgoVideoModel(EgoVideoConfig()).eval()
        pixels = torch.randn(1, 3, 4, 224, 224)
        with torch.no_grad():
            t_ego = _median_time(lambda: model.video_tokens(pixels), 1)
        print(f"EgoVideo full ViT, one clip, fp32, {args.threads} threads: {t_ego:.1f} s")


if __name__ == "__main__":
    main()
