"""Forecast latency and throughput of EggHand cpu-small on the CPU.

- batch 1, cached encoder features (the batch carries video_tokens / text_tokens, as the feature cache
  gives them): median and p95 over N calls of ``EggHandPolicy.forecast`` (4 Euler steps of the decoder);
- batch 1, encoder in the loop (frames + prompt): the offline encoder's video CNN runs every call; its
  MiniLM text features are cached per prompt (as deployed) and, separately, recomputed every call;
- throughput (windows/s) with cached features at larger batches, and with the encoder at batch 32;
- the same for the CVM baseline at batch 1 (the cheapest forecaster, for scale);
- streaming: ``StreamingForecaster.step`` per 10 fps frame after the 2 s warm-up (a 224 px RGB frame, 42
  joints with validity and a camera pose per call; each frame goes through the video CNN once, when it
  arrives, and the window's tokens reuse the features of the 3 earlier frames), median and p95, and the
  per-frame CNN alone.

Inputs are random windows of the contract's shapes (latency does not depend on the values); weights
are random unless --checkpoint gives a trained model.

    python bench/latency.py                # 300 calls per figure, batches 8/32/128
    python bench/latency.py --tiny         # seconds (CI)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import machine_notes, median, percentile, print_figures, setup_env, time_calls

TARGET_MS = 25.0
PROMPTS = ("pick up the red mug and lift it", "pour from the blue bottle into the cup",
           "wipe the table with the yellow sponge", "twist the lid of the green jar")


def random_batch(b: int, image_size: int = 224, seed: int = 0) -> dict:
    """A window batch with the contract's keys and shapes (egghand_lib/batch.py)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return {
        "past_joints": torch.randn(b, 20, 42, 3, generator=g) * 0.2,
        "past_valid": torch.rand(b, 20, 42, generator=g) > 0.1,
        "past_extrinsics": torch.randn(b, 20, 3, 4, generator=g),
        "frames": torch.randint(0, 256, (b, 4, 3, image_size, image_size), generator=g, dtype=torch.uint8),
        "task": [PROMPTS[i % len(PROMPTS)] for i in range(b)],
    }


def unit_stats():
    import torch

    from egghand_lib.batch import NormStats

    return NormStats(-torch.ones(138), torch.ones(138), -torch.ones(126), torch.ones(126))


def with_features(model, batch: dict) -> dict:
    """The batch plus its precomputed encoder features (what the feature cache stores)."""
    import torch

    with torch.no_grad():
        out = model.encoder(batch["frames"], list(batch["task"]))
    return {**{k: v for k, v in batch.items() if k not in ("frames", "task")},
            "video_tokens": out.video_tokens, "video_mask": out.video_mask,
            "text_tokens": out.text_tokens, "text_mask": out.text_mask}


def stream_step(forecaster, seed: int = 0):
    """A function that feeds ``forecaster`` the next frame of a walking camera with two hands in front of it."""
    import numpy as np

    from egghand_lib.geometry import look_at_extrinsics

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)
    hand = rng.normal(0, 0.05, (42, 3))
    state = {"t": 0}

    def step():
        t = state["t"]
        state["t"] += 1
        eye = np.array([0.05 * t, 0.1 * np.sin(0.1 * t), 1.5])
        extr = look_at_extrinsics(eye, eye + np.array([np.cos(0.02 * t), np.sin(0.02 * t), -0.6]))
        joints = eye + np.array([0.4, 0.0, -0.3]) + hand + 0.01 * np.sin(0.3 * t)
        valid = rng.random(42) > 0.1
        return forecaster.step(images[t % len(images)], joints, valid, extr, timestamp=t / 10)

    return step


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="few calls, small batches (CI)")
    ap.add_argument("--calls", type=int, default=None, help="timed calls per batch-1 figure (default 300)")
    ap.add_argument("--batches", type=int, nargs="+", default=None, help="throughput batch sizes (default 8 32 128)")
    ap.add_argument("--checkpoint", type=Path, default=None, help="trained model (run folder or saved model)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = ap.parse_args()
    setup_env(args.threads or (1 if args.tiny else None))
    import torch

    from egghand_lib.baselines import ConstantVelocity, StaticPose
    from egghand_lib.models.egghand import EggHandConfig, EggHandPolicy
    from egghand_lib.streaming import StreamingForecaster

    calls = args.calls or (20 if args.tiny else 300)
    batches = args.batches or ([4, 8] if args.tiny else [8, 32, 128])
    if args.checkpoint is not None:
        model = EggHandPolicy.from_pretrained(args.checkpoint)
        source = str(args.checkpoint)
    else:
        torch.manual_seed(0)
        model = EggHandPolicy(EggHandConfig.preset("cpu-small"), stats=unit_stats())
        source = "random weights"
    model.eval()
    enc = model.encoder
    figs: dict[str, float] = {}

    # batch 1: cached features
    b1 = random_batch(1)
    f1 = with_features(model, b1)
    t = time_calls(lambda: model.forecast(f1), calls)
    figs["cached_b1_median_ms"] = 1e3 * median(t)
    figs["cached_b1_p95_ms"] = 1e3 * percentile(t, 95)
    # batch 1: encoder in the loop (text features cached per prompt, as deployed) ...
    t = time_calls(lambda: model.forecast(b1), calls)
    figs["encoder_b1_median_ms"] = 1e3 * median(t)
    figs["encoder_b1_p95_ms"] = 1e3 * percentile(t, 95)
    # ... and with the text encoder recomputed on every call
    text = getattr(enc, "text", None)
    if text is not None and hasattr(text, "clear_cache"):
        def uncached():
            text.clear_cache()
            return model.forecast(b1)

        t = time_calls(uncached, max(10, calls // 3))
        figs["encoder_nocache_b1_median_ms"] = 1e3 * median(t)
    figs["encoder_over_cached_b1"] = figs["encoder_b1_median_ms"] / figs["cached_b1_median_ms"]

    # streaming: one step per new frame, after the warm-up (each frame encoded once)
    forecaster = StreamingForecaster(model, task=PROMPTS[0])
    step = stream_step(forecaster)
    for _ in range(20):
        step()  # the 2 s warm-up
    t = time_calls(lambda: step(), calls)
    encoded = forecaster.frames_encoded
    if step() is None or forecaster.frames_encoded != encoded + int(forecaster.incremental):
        raise RuntimeError("streaming: expected a forecast per frame and one frame encoding per call")
    figs["stream_step_median_ms"] = 1e3 * median(t)
    figs["stream_step_p95_ms"] = 1e3 * percentile(t, 95)
    if getattr(enc, "frames_independent", False):
        img = b1["frames"][0, :1]
        with torch.no_grad():
            t = time_calls(lambda: enc.encode_frames(img), calls)
        figs["stream_encode_frame_median_ms"] = 1e3 * median(t)

    # CVM at batch 1 (numpy), for scale
    static = StaticPose().fit(torch.zeros(1, 20, 42, 3).numpy(), torch.ones(1, 20, 42, dtype=torch.bool).numpy())
    cvm = ConstantVelocity(static)
    pj, pv = b1["past_joints"].numpy(), b1["past_valid"].numpy()
    t = time_calls(lambda: cvm.predict(pj, pv), calls)
    figs["cvm_b1_median_ms"] = 1e3 * median(t)

    # throughput
    reps = 3 if args.tiny else 10
    for b in batches:
        fb = with_features(model, random_batch(b, seed=b))
        t = time_calls(lambda fb=fb: model.forecast(fb), reps, warmup=1)
        figs[f"cached_b{b}_windows_per_s"] = b / median(t)
    b = 8 if args.tiny else 32
    rb = random_batch(b, seed=1000 + b)
    t = time_calls(lambda: model.forecast(rb), reps, warmup=1)
    figs[f"encoder_b{b}_windows_per_s"] = b / median(t)

    notes = machine_notes() + [
        f"model: cpu-small ({source}), {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters "
        f"incl. the encoder; {model.config.num_inference_steps} Euler steps per forecast; {calls} timed calls",
        f"target: cached_b1_median_ms <= {TARGET_MS:g} on 2 cores "
        f"({'met' if figs['cached_b1_median_ms'] <= TARGET_MS else 'NOT met'}: "
        f"{figs['cached_b1_median_ms']:.1f} ms)",
        f"target: stream_step_median_ms <= {TARGET_MS:g} on 2 cores, each frame encoded once "
        f"({'met' if figs['stream_step_median_ms'] <= TARGET_MS else 'NOT met'}: "
        f"{figs['stream_step_median_ms']:.1f} ms)",
    ]
    print_figures(figs, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
