"""Peak memory (RSS) of cpu-small training and of building the paper-size decoder.

Each measurement runs in its own subprocess (this script with ``--child``) that reports its own
``ru_maxrss`` at the end, so the figures do not mix, and its resident memory just before the measured
work (after the imports and a tiny warm-up build of the same classes: the baseline of the same run):
- train: ``egghand_lib.training.train`` of the cpu-small config for a few optimizer steps (batch 64) on
  prepared EgoSynth windows (the EgoSynth "bench" split, generated/prepared when absent);
- paper decoder: ``EggHandPolicy`` of the "gr00t-n1.5" preset without encoder (adapters + the GR00T
  N1.5 action head, ~1.07 B parameters), built in real fp32 memory (not on the meta device).

    python bench/memory.py            # cpu-small training 5 steps + the paper-size decoder
    python bench/memory.py --tiny     # tiny EgoSynth, "tiny" training and the cpu-small decoder (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_WORK, ensure_egosynth, ensure_prepared, find_demo_outputs, machine_notes, print_figures

MARK = "CHILD_RESULT "


def current_rss_mb() -> float:
    """Resident set size now (VmRSS of /proc/self/status), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def child(kind: str, args: argparse.Namespace) -> dict:
    import resource

    import torch

    torch.set_num_threads(int(args.threads or (1 if args.tiny else os.cpu_count() or 1)))
    from egghand_lib.models.egghand import EggHandConfig, EggHandPolicy, build_action_head  # noqa: F401

    out: dict = {}
    with torch.random.fork_rng(devices=[]):  # warm-up: import everything the head pulls in lazily
        build_action_head(EggHandConfig.preset("tiny"))
    out["rss_before_mb"] = current_rss_mb()
    t0 = time.perf_counter()
    if kind == "train":
        from egghand_lib.training import TrainConfig, train

        name = "tiny" if args.tiny else "cpu-small"
        cfg = TrainConfig.named(name, max_steps=args.steps, eval_split=None, save_every=0, log_every=1,
                                keep_checkpoints=1)
        with tempfile.TemporaryDirectory() as tmp:
            res = train(cfg, tmp, prep_dir=args.prep, resume=False, progress=False)
        out.update(config=name, steps=res.step, batch=cfg.batch_size,
                   params=sum(p.numel() for p in res.model.parameters()))
    elif kind == "decoder":
        preset = "cpu-small" if args.tiny else "gr00t-n1.5"
        cfg = EggHandConfig.preset(preset).replace(encoder="cached", decoder_init="random",
                                                   video_dim=1408, text_dim=512)
        model = EggHandPolicy(cfg)
        n = sum(p.numel() for p in model.parameters())
        nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
        out.update(preset=preset, params=n, param_bytes=nbytes,
                   head_params=sum(p.numel() for p in model.action_head.parameters()))
    out["seconds"] = time.perf_counter() - t0
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


def run_child(kind: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--steps", str(args.steps)]
    if args.tiny:
        cmd.append("--tiny")
    if args.prep is not None:
        cmd += ["--prep", str(args.prep)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(f"memory child {kind!r} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny data, 'tiny' training, cpu-small decoder (CI)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps of the training child (default 5)")
    ap.add_argument("--prep", type=Path, default=None, help="prepared folder (default: EgoSynth in --work)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--child", choices=["train", "decoder"], default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.steps = args.steps or (2 if args.tiny else 5)
    if args.child is not None:
        print(MARK + json.dumps(child(args.child, args)), flush=True)
        return 0

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.prep is None:
        demo = {} if args.tiny else find_demo_outputs()
        if "prep" in demo:
            args.prep = demo["prep"]
        else:
            tag = "tiny" if args.tiny else "bench"
            raw = demo.get("raw") or ensure_egosynth(args.work / f"raw_{tag}", args.tiny)
            args.prep = ensure_prepared(raw, args.work / f"prep_{tag}", args.tiny)

    tr = run_child("train", args)
    dec = run_child("decoder", args)
    dec_increase_mb = dec["max_rss_mb"] - dec["rss_before_mb"]
    figs = {
        "train_rss_before_mb": tr["rss_before_mb"],
        "train_peak_rss_mb": tr["max_rss_mb"],
        "train_peak_over_before": tr["max_rss_mb"] / tr["rss_before_mb"],
        "decoder_params_m": dec["params"] / 1e6,
        "decoder_param_mb": dec["param_bytes"] / 2**20,
        "decoder_rss_before_mb": dec["rss_before_mb"],
        "decoder_build_peak_rss_mb": dec["max_rss_mb"],
        "decoder_build_s": dec["seconds"],
        "decoder_rss_increase_over_param_bytes": dec_increase_mb / (dec["param_bytes"] / 2**20),
    }
    import torch  # noqa: F401  (machine_notes reports the torch version)

    notes = machine_notes() + [
        f"train: config {tr['config']}, {tr['steps']} optimizer steps at batch {tr['batch']}, "
        f"{tr['params'] / 1e6:.2f} M parameters (incl. encoder), data {args.prep}",
        f"decoder: preset {dec['preset']}{' (tiny run: not the paper size)' if args.tiny else ''}, fp32, "
        f"{dec['params'] / 1e6:.1f} M parameters ({dec['head_params'] / 1e6:.1f} M in the GR00T head)",
        "*_rss_before_mb: the same process after its imports, before the measured work (the baseline); "
        "decoder_rss_increase_over_param_bytes = (peak - before) / fp32 parameter bytes",
    ]
    print_figures(figs, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
