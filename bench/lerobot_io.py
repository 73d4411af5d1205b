"""LeRobot export / read-back and feature-cache throughput on prepared EgoSynth data.

- export: seconds per frame of ``export_lerobot`` (PNG images inside parquet, LeRobot format v3.0);
- read: windows/s of ``LeRobotWindowDataset`` (through ``LeRobotDataset`` + delta_timestamps) with and
  without frames, against the prepared ``WindowDataset`` (memory-mapped episodes) in the same run;
- feature cache: windows/s of ``CachedFeatures`` reads and of ``with_cached_features`` items (frames
  dropped), against running a small frozen encoder on the frames of each window.
Before timing, the LeRobot windows are checked equal to the WindowDataset ones on a sample.

    python bench/lerobot_io.py            # EgoSynth "bench" preset (generated into runs/bench if absent)
    python bench/lerobot_io.py --tiny     # seconds (CI)
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from _common import DEFAULT_WORK, ensure_egosynth, ensure_prepared, machine_notes, print_figures, setup_env


def _windows_per_s(ds, indices) -> float:
    t0 = time.perf_counter()
    for i in indices:
        ds[i]
    return len(indices) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny EgoSynth data, seconds (CI)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="folder for generated data")
    ap.add_argument("--windows", type=int, default=None, help="windows timed per figure")
    args = ap.parse_args()
    setup_env()

    import torch

    from egghand_lib.data import feature_cache as FC
    from egghand_lib.data import lerobot_dataset as L
    from egghand_lib.data.windows import WindowDataset
    from egghand_lib.models.encoders.base import VideoTextEncoder

    tag = "tiny" if args.tiny else "bench"
    raw = ensure_egosynth(args.work / f"raw_{tag}", args.tiny)
    prep = ensure_prepared(raw, args.work / f"prep_{tag}", args.tiny)
    ref = WindowDataset(prep, "train")
    n_frames = sum(len(e) for e in ref.episodes)

    out = args.work / f"lerobot_{tag}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    L.export_lerobot_from_prepared(prep, "train", out, progress=False, force=True)
    export_s = (time.perf_counter() - t0) / n_frames

    lr = L.LeRobotWindowDataset(out)
    lr_nf = L.LeRobotWindowDataset(out, load_frames=False)
    k = min(len(ref), args.windows or (30 if args.tiny else 300))
    idx = [int(i) for i in torch.linspace(0, len(ref) - 1, k).round().long()]
    for i in idx[:: max(1, k // 10)]:  # identical work before timing
        a, b = ref[i], lr[i]
        assert all(torch.equal(a[key], b[key]) for key in ("frames", "past_valid", "future_valid"))
        assert torch.allclose(a["future_joints"], b["future_joints"], atol=1e-6)

    class Frozen(VideoTextEncoder):  # a small frozen conv encoder: 4 x 16 tokens of width 64
        name, video_dim, text_dim, frozen = "bench-frozen", 64, 32, True

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 64, 16, stride=16)
            self.emb = torch.nn.Embedding(128, 32)

        def encode_video(self, frames):
            x = torch.nn.functional.interpolate(frames.flatten(0, 1).float() / 255, size=64)
            v = self.conv(x).flatten(2).transpose(1, 2).reshape(frames.shape[0], -1, 64)
            return v, torch.ones(v.shape[:2], dtype=torch.bool)

        def encode_text(self, prompts):
            ids = torch.tensor([[ord(c) % 128 for c in p[:16].ljust(16)] for p in prompts])
            return self.emb(ids), torch.ones(ids.shape, dtype=torch.bool)

        def cache_key(self):
            return {"weights": "bench-random", "preprocessing": "resize 64"}

    enc = Frozen().eval()
    cache_dir = args.work / f"features_{tag}"
    shutil.rmtree(cache_dir, ignore_errors=True)
    t0 = time.perf_counter()
    cache = FC.build_feature_cache(enc, ref, cache_dir, batch_size=32, shard_size=512, progress=False)
    build_wps = len(ref) / (time.perf_counter() - t0)
    wrapped = FC.with_cached_features(ref, cache, drop_frames=True)

    def encode_one(i):
        item = ref[i]
        with torch.no_grad():
            enc(item["frames"][None], [item["task"]])

    t0 = time.perf_counter()
    for i in idx:
        encode_one(i)
    encoder_wps = len(idx) / (time.perf_counter() - t0)
    figures = {
        "lerobot_export_s_per_frame": export_s,
        "lerobot_read_windows_per_s": _windows_per_s(lr, idx),
        "lerobot_read_no_frames_windows_per_s": _windows_per_s(lr_nf, idx),
        "window_dataset_windows_per_s": _windows_per_s(ref, idx),
        "feature_cache_build_windows_per_s": build_wps,
        "feature_cache_read_windows_per_s": _windows_per_s(cache, idx),
        "cached_window_items_per_s": _windows_per_s(wrapped, idx),
        "encoder_in_loop_items_per_s": encoder_wps,
    }
    notes = machine_notes() + [
        f"data: EgoSynth {tag}, train split, {len(ref)} windows / {n_frames} frames, "
        f"{tuple(ref[0]['frames'].shape[-2:])} px; {k} windows timed per read figure",
        "LeRobot reads go through LeRobotDataset + delta_timestamps (parquet + PNG decode per window); "
        "WindowDataset reads memory-mapped prepared episodes",
    ]
    print_figures(figures, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
