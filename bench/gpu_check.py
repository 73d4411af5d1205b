"""GPU smoke test at the paper's size: bf16 training steps and forecast latency of EggHand on one CUDA device.

The model is the paper's (``EggHandConfig.preset("gr00t-n1.5")``: the width-1024, 16-layer GR00T N1.5
head) with EgoVideo's architecture as its frozen encoder (the 40-block ViT on 4 x 224 x 224 frames and the
BERT-large text tower), all at random weights: no checkpoint is read, so this checks the machine (memory,
speed, bf16 kernels), not the accuracy. Both are built directly on the device; the frozen encoder's weights
are then held in bf16 (``--encoder-dtype fp32`` keeps them in fp32). One optimizer step =
forward under bf16 autocast (fp32 master weights, as ``accelerate`` with mixed_precision="bf16") + backward
+ AdamW + gradient clipping, at the paper's micro-batch of 8 windows:

- cached: the batch carries the encoder's features (what ``egghand cache`` stores), the encoder is skipped;
- in the loop: the batch carries frames and prompts, every step runs the frozen encoder first.

Then the forecast latency of one window (deterministic forecast, no grad, bf16), from cached features and
from frames. Budget: well under 5 minutes on a recent GPU (a few timed steps; ``--max-seconds`` stops
measuring early, and says so, if the device is slower).

No CUDA device: the script prints ``gpu_check: skipped: ...`` on stderr and exits with status 77 (the
automake / meson convention for "skipped": nothing was measured, which is neither a pass nor a failure).
``--device cpu --tiny`` runs the same code on the CPU with small models (how CI exercises it).

    python bench/gpu_check.py                      # on a CUDA machine
    python bench/gpu_check.py --tiny --device cpu  # the code path on a CPU, seconds
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from _common import median, print_figures, setup_env

SKIPPED = 77  # exit status when there is no CUDA device
PROMPTS = ("pick up the red mug and lift it", "pour from the blue bottle into the cup")
TINY_EGOVIDEO = dict(image_size=28, patch_size=14, width=32, depth=1, heads=2, mlp_dim=64, pool_heads=2, pool_dim=32,
                     embed_dim=16, text_width=32, text_layers=1, text_heads=2, text_mlp_dim=64)


def make_batch(b: int, image_size: int, device, seed: int = 0) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    batch = {
        "past_joints": torch.randn(b, 20, 42, 3, generator=g) * 0.2,
        "past_valid": torch.rand(b, 20, 42, generator=g) > 0.1,
        "past_extrinsics": torch.randn(b, 20, 3, 4, generator=g),
        "future_joints": torch.randn(b, 10, 42, 3, generator=g) * 0.2,
        "future_valid": torch.rand(b, 10, 42, generator=g) > 0.1,
        "frames": torch.randint(0, 256, (b, 4, 3, image_size, image_size), generator=g, dtype=torch.uint8),
    }
    return {**{k: v.to(device) for k, v in batch.items()}, "task": [PROMPTS[i % len(PROMPTS)] for i in range(b)]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --tiny: the code path, for CI)")
    ap.add_argument("--tiny", action="store_true", help="tiny encoder and decoder (seconds)")
    ap.add_argument("--batch", type=int, default=8, help="windows per training step (the paper's micro-batch: 8)")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps with cached features")
    ap.add_argument("--loop-steps", type=int, default=3, help="timed training steps with the encoder in the loop")
    ap.add_argument("--latency-calls", type=int, default=20, help="timed forecasts per latency figure")
    ap.add_argument("--encoder-dtype", default="bf16", choices=["bf16", "fp32"], help="frozen encoder weights")
    ap.add_argument("--max-seconds", type=float, default=270.0, help="stop measuring after this long (budget 5 min)")
    args = ap.parse_args()
    setup_env(1 if args.tiny else None)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: skipped: no CUDA device (torch.cuda.is_available() is False; torch "
              f"{torch.__version__}, built for CUDA {torch.version.cuda}); run it on a machine with an NVIDIA GPU, "
              "or with --tiny --device cpu to exercise the code", file=sys.stderr)
        return SKIPPED
    if args.device == "cpu" and not args.tiny:
        print("gpu_check: the paper-size model on a CPU would take hours; use --tiny with --device cpu",
              file=sys.stderr)
        return 2

    from egghand_lib.batch import NormStats
    from egghand_lib.models.egghand import EggHandConfig, EggHandPolicy
    from egghand_lib.models.encoders.egovideo import (
        EgoVideoConfig,
        EgoVideoEncoder,
        EgoVideoModel,
        load_bert_uncased_tokenizer,
    )

    t_start = time.perf_counter()
    device = torch.device(args.device)
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    def peak_gb() -> float:
        return torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")

    def reset_peak() -> None:
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)

    def over_budget() -> bool:
        return time.perf_counter() - t_start > args.max_seconds

    # The model, built on the device (random weights; nothing is read).
    torch.manual_seed(0)
    enc_cfg = EgoVideoConfig(**{**EgoVideoConfig().__dict__, **(TINY_EGOVIDEO if args.tiny else {})})
    t0 = time.perf_counter()
    with torch.device(device):
        encoder = EgoVideoEncoder(EgoVideoModel(enc_cfg), load_bert_uncased_tokenizer(None, enc_cfg.vocab_size))
        dec_cfg = EggHandConfig.preset("tiny" if args.tiny else "gr00t-n1.5", encoder="egovideo", decoder_init="random",
                                       video_dim=encoder.video_dim, text_dim=encoder.text_dim)
        stats = NormStats(-torch.ones(138), torch.ones(138), -torch.ones(126), torch.ones(126))
        model = EggHandPolicy(dec_cfg, stats=stats, encoder=encoder)
    model.to(device).train()
    if args.encoder_dtype == "bf16":
        encoder.to(torch.bfloat16)  # frozen: its weights are never updated, half the memory
    sync()
    build_s = time.perf_counter() - t0
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    bf16 = dict(device_type=device.type, dtype=torch.bfloat16)

    def step(batch: dict) -> float:
        sync()
        t = time.perf_counter()
        with torch.autocast(**bf16):
            out = model(batch)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        loss = float(out["loss"].detach())
        if not math.isfinite(loss):
            raise RuntimeError(f"gpu_check: non-finite training loss {loss}")
        return time.perf_counter() - t

    size = enc_cfg.image_size if args.tiny else 224
    batch = make_batch(args.batch, size, device)
    with torch.no_grad(), torch.autocast(**bf16):
        feats = encoder(batch["frames"], list(batch["task"]))
    cached = {**{k: v for k, v in batch.items() if k not in ("frames", "task")},
              "video_tokens": feats.video_tokens.float(), "video_mask": feats.video_mask,
              "text_tokens": feats.text_tokens.float(), "text_mask": feats.text_mask}

    figures: dict[str, float] = {"batch": args.batch, "build_s": build_s,
                                 "decoder_trainable_params_m": sum(p.numel() for p in params) / 1e6,
                                 "encoder_params_m": sum(p.numel() for p in encoder.parameters()) / 1e6}
    notes = []
    reset_peak()
    step(cached)  # warm-up: allocations, kernel selection
    cached_times = []
    for _ in range(args.steps):
        cached_times.append(step(cached))
        if over_budget():
            notes.append(f"over --max-seconds after {len(cached_times)} cached steps")
            break
    figures.update(cached_step_s=median(cached_times), cached_peak_gpu_mem_gb=peak_gb())

    loop_times: list[float] = []
    if not over_budget():
        reset_peak()
        step(batch)
        for _ in range(args.loop_steps):
            loop_times.append(step(batch))
            if over_budget():
                notes.append(f"over --max-seconds after {len(loop_times)} in-the-loop steps")
                break
    figures.update(loop_step_s=median(loop_times) if loop_times else float("nan"),
                   loop_peak_gpu_mem_gb=peak_gb() if loop_times else float("nan"))

    # Forecast latency of one window (eval mode, no grad, bf16 autocast).
    opt.state.clear()  # the moments are not needed for forecasting
    model.eval()
    one = {k: (v[:1] if torch.is_tensor(v) else v[:1]) for k, v in batch.items()}
    one_cached = {k: (v[:1] if torch.is_tensor(v) else v[:1]) for k, v in cached.items()}
    for name, b in (("forecast_cached_b1_ms", one_cached), ("forecast_encoder_b1_ms", one)):
        times = []
        with torch.no_grad(), torch.autocast(**bf16):
            model.forecast(b)
            for _ in range(args.latency_calls):
                sync()
                t = time.perf_counter()
                pred = model.forecast(b)
                sync()
                times.append(time.perf_counter() - t)
                if over_budget():
                    break
        if not torch.isfinite(pred).all():
            raise RuntimeError(f"gpu_check: non-finite forecast ({name})")
        figures[name] = 1000 * median(times)
    figures["total_s"] = time.perf_counter() - t_start

    dev_name = torch.cuda.get_device_name(device) if cuda else "cpu"
    size_note = "TINY models (code path only)" if args.tiny else "paper size: GR00T N1.5 head + EgoVideo, random init"
    notes = [f"device: {dev_name}; torch {torch.__version__}; {size_note}",
             f"timed: {len(cached_times)} cached steps, {len(loop_times)} in-the-loop steps (medians), batch "
             f"{args.batch}, bf16 autocast, encoder weights {args.encoder_dtype}; latency: median of "
             f"{args.latency_calls} forecasts of one window"] + notes
    print_figures(figures, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
