"""Data preparation speed: EgoExo4D-layout files -> canonical forecasting windows.

Library path (timed): ``episodes.plan_split`` (read + validate the JSON annotations of every split into
episodes) then ``windows.make_windows`` (all windows of an episode at once, vectorised).
Reference path (timed): the same reading, then a straightforward per-window Python loop written here
(per window: gather its 30 frames, canonical frame of the first observed camera, joints and camera
poses in that frame with numpy over the window's frames, egomotion score), as one would write it
without vectorising across windows.
Before timing, the two paths' windows are checked equal (same keys, same values within float32
round-off), so the speed-up compares identical work.

Video decoding is not part of either path: a window holds indices into its episode's frames, and the
frames are decoded once per episode by ``egghand prepare`` whatever the windowing does.

    python bench/data_prep.py            # EgoSynth "bench" preset (generated into runs/bench if absent)
    python bench/data_prep.py --tiny     # seconds (CI)
"""

from __future__ import annotations

import argparse
import math
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _common import (
    DEFAULT_WORK,
    ensure_egosynth,
    find_demo_outputs,
    machine_notes,
    max_rss_mb,
    print_figures,
    setup_env,
)

OBS = tuple(range(-19, 1))
TARGET = {"future": tuple(range(1, 11)), "egghand-code": tuple(range(0, 10))}
VIDEO = (-18, -12, -6, 0)
TARGET_SPEEDUP = 20.0


# ------------------------------------------------------------------------------ the reference (per window)


def _canonical_z_up(E: np.ndarray) -> np.ndarray:
    """World -> canonical 4x4 of one world -> camera 3x4 (up = +z): origin at the camera centre,
    horizontal viewing direction on +x (docs/conventions.md, "Coordinate frames"), written directly from the
    definition."""
    R, t = E[:, :3], E[:, 3]
    c = -R.T @ t
    f = R.T @ np.array([0.0, 0.0, 1.0])
    yaw = math.atan2(f[1], f[0])
    cy, sy = math.cos(-yaw), math.sin(-yaw)
    Rc = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    T = np.eye(4)
    T[:3, :3] = Rc
    T[:3, 3] = -Rc @ c
    return T


def reference_windows_numpy(ep, protocol: str = "future") -> dict[str, np.ndarray]:
    """All windows of one episode, one window at a time, with numpy over the window's 30 frames."""
    n = len(ep.frame_numbers)
    J = np.asarray(ep.joints, np.float64)
    V = np.asarray(ep.valid, bool)
    E4 = np.zeros((n, 4, 4))
    E4[:, :3] = np.asarray(ep.extrinsics, np.float64)
    E4[:, 3, 3] = 1.0
    tgt = TARGET[protocol]
    rows: dict[str, list] = {k: [] for k in ("past_joints", "past_valid", "past_extrinsics", "future_joints",
                                             "future_valid", "future_extrinsics", "canonical_T", "egomotion",
                                             "frame_indices")}
    for t in range(n):
        C = _canonical_z_up(E4[min(max(t + OBS[0], 0), n - 1), :3])
        C_inv = np.linalg.inv(C)
        cams, inside_all = [], []
        for name, offsets in (("past", OBS), ("future", tgt)):
            raw = np.array([t + o for o in offsets])
            idx = np.clip(raw, 0, n - 1)
            inside = (raw >= 0) & (raw < n)
            valid = V[idx] & inside[:, None]
            joints = J[idx] @ C[:3, :3].T + C[:3, 3]
            joints[~valid] = 0.0
            ext = (E4[idx] @ C_inv)[:, :3]
            rows[f"{name}_joints"].append(joints)
            rows[f"{name}_valid"].append(valid)
            rows[f"{name}_extrinsics"].append(ext)
            cams.append(ext)
            inside_all.append(inside)
        # egomotion: mean Frobenius norm of the change between adjacent real camera poses (observed +
        # target; with egghand-code the first target frame repeats the last observed one: counted once)
        seq, ok = np.concatenate(cams), np.concatenate(inside_all)
        if protocol == "egghand-code":
            seq, ok = np.delete(seq, len(OBS), axis=0), np.delete(ok, len(OBS))
        steps = [np.linalg.norm(seq[k] - seq[k - 1]) for k in range(1, len(seq)) if ok[k] and ok[k - 1]]
        rows["egomotion"].append(sum(steps) / len(steps) if steps else math.nan)
        rows["canonical_T"].append(C)
        rows["frame_indices"].append(np.clip([t + o for o in VIDEO], 0, n - 1))
    return {k: np.asarray(v) for k, v in rows.items()}


def reference_windows_python(ep, protocol: str = "future") -> dict[str, np.ndarray]:
    """All windows of one episode in plain Python loops: per window, per frame, per joint."""
    n = len(ep.frame_numbers)
    J = np.asarray(ep.joints, np.float64)
    V = np.asarray(ep.valid, bool)
    E = np.asarray(ep.extrinsics, np.float64)
    tgt = TARGET[protocol]
    rows: dict[str, list] = {k: [] for k in ("past_joints", "past_valid", "past_extrinsics", "future_joints",
                                             "future_valid", "future_extrinsics", "canonical_T", "egomotion",
                                             "frame_indices")}
    for t in range(n):
        first = min(max(t + OBS[0], 0), n - 1)
        C = _canonical_z_up(E[first])
        C_inv = np.linalg.inv(C)
        out = {}
        inside_all = []
        for name, offsets in (("past", OBS), ("future", tgt)):
            joints = np.zeros((len(offsets), 42, 3))
            valid = np.zeros((len(offsets), 42), bool)
            cams = np.zeros((len(offsets), 3, 4))
            for k, o in enumerate(offsets):
                i = min(max(t + o, 0), n - 1)
                inside = 0 <= t + o < n
                inside_all.append(inside)
                cams[k] = (np.vstack([E[i], [0, 0, 0, 1]]) @ C_inv)[:3]
                for j in range(42):
                    if inside and V[i, j]:
                        valid[k, j] = True
                        joints[k, j] = C[:3, :3] @ J[i, j] + C[:3, 3]
            out[name] = (joints, valid, cams)
        # egomotion: mean Frobenius norm of the change of adjacent real camera poses (observed + target;
        # with egghand-code the first target frame repeats the last observed one and is counted once)
        seq = list(zip(np.concatenate([out["past"][2], out["future"][2]]), inside_all, strict=True))
        if protocol == "egghand-code":
            del seq[len(OBS)]
        steps = [np.linalg.norm(b - a) for (a, ia), (b, ib) in zip(seq[:-1], seq[1:], strict=True) if ia and ib]
        rows["egomotion"].append(sum(steps) / len(steps) if steps else math.nan)
        for name in ("past", "future"):
            rows[f"{name}_joints"].append(out[name][0])
            rows[f"{name}_valid"].append(out[name][1])
            rows[f"{name}_extrinsics"].append(out[name][2])
        rows["canonical_T"].append(C)
        rows["frame_indices"].append([min(max(t + o, 0), n - 1) for o in VIDEO])
    return {k: np.asarray(v) for k, v in rows.items()}


# ------------------------------------------------------------------------------------------- the run


def read_episodes(raw_dir: Path, splits: list[str]) -> list:
    """Library reading: every split's annotations -> validated episodes (no video decoding)."""
    from egghand_lib.data.episodes import RawIndex, plan_split
    from egghand_lib.data.validation import ValidationConfig, ValidationReport

    index = RawIndex.read(raw_dir)
    cfg = ValidationConfig()
    report = ValidationReport(False)
    eps = []
    for split in splits:
        eps += plan_split(raw_dir, split, "manual", cfg, report, 224, index, progress=False)
    return eps


def check_equal(lib: dict[str, np.ndarray], ref: dict[str, np.ndarray], where: str) -> None:
    """Raise AssertionError unless the library's windows equal the reference's (float32 round-off)."""
    for k in ("past_valid", "future_valid", "frame_indices"):
        if not np.array_equal(lib[k], ref[k]):
            raise AssertionError(f"{where}: {k} differs between library and reference")
    for k, tol in (("past_joints", 1e-5), ("future_joints", 1e-5), ("past_extrinsics", 1e-5),
                   ("future_extrinsics", 1e-5), ("canonical_T", 1e-5), ("egomotion", 1e-5)):
        a, b = np.asarray(lib[k], np.float64), np.asarray(ref[k], np.float64)
        if k.endswith("_joints"):  # invalid joints carry arbitrary values: compare valid ones only
            m = ref[k.replace("joints", "valid")]
            a, b = a[m], b[m]
        if a.shape != b.shape or not np.allclose(a, b, atol=tol, rtol=1e-5, equal_nan=True):
            err = np.nanmax(np.abs(a - b)) if a.shape == b.shape else "shape"
            raise AssertionError(f"{where}: {k} differs between library and reference (max abs diff {err})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny EgoSynth data, seconds (CI)")
    ap.add_argument("--raw", type=Path, default=None, help="EgoExo4D-layout folder (default: EgoSynth in --work)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="folder for generated data")
    ap.add_argument("--splits", nargs="+", default=["train", "val", "test"])
    ap.add_argument("--protocol", default="future", choices=sorted(TARGET))
    ap.add_argument("--repeats", type=int, default=None, help="timed repetitions of the library path (best of)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    setup_env(args.threads)
    from egghand_lib.data.windows import make_windows

    raw = args.raw
    if raw is None:
        demo = {} if args.tiny else find_demo_outputs()
        raw = demo.get("raw") or ensure_egosynth(args.work / ("raw_tiny" if args.tiny else "raw_bench"), args.tiny)
    repeats = args.repeats or (2 if args.tiny else 3)

    # 1. Equality first: library windows == both references' windows on every episode.
    eps = read_episodes(raw, args.splits)
    if not eps:
        raise SystemExit(f"{raw}: no episodes in splits {args.splits}")
    n_windows = sum(len(e.frame_numbers) for e in eps)
    for ep in eps:
        lib = make_windows(ep, args.protocol)
        check_equal(lib, reference_windows_python(ep, args.protocol), f"{ep.key} (python loop)")
        check_equal(lib, reference_windows_numpy(ep, args.protocol), f"{ep.key} (numpy loop)")

    # 2. Library: read + vectorised windows (best of `repeats`), peak traced memory on one extra run.
    lib_read, lib_win = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        eps = read_episodes(raw, args.splits)
        t1 = time.perf_counter()
        for ep in eps:
            make_windows(ep, args.protocol)
        t2 = time.perf_counter()
        lib_read.append(t1 - t0)
        lib_win.append(t2 - t1)
    tracemalloc.start()
    parts = [make_windows(ep, args.protocol) for ep in read_episodes(raw, args.splits)]
    _, peak_lib = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del parts

    # 3. References: the same reading + a per-window loop (once each: they are the slow ones).
    ref = {}
    for name, fn in (("python", reference_windows_python), ("numpy", reference_windows_numpy)):
        t0 = time.perf_counter()
        eps = read_episodes(raw, args.splits)
        t1 = time.perf_counter()
        for ep in eps:
            fn(ep, args.protocol)
        ref[name] = (t1 - t0, time.perf_counter() - t1)

    read_s = min(lib_read)
    lib_s = min(r + w for r, w in zip(lib_read, lib_win, strict=True))
    win_s = min(lib_win)
    figures = {
        "episodes": len(eps),
        "windows": n_windows,
        "read_s": read_s,
        "library_windowing_s": win_s,
        "library_windows_per_s": n_windows / lib_s,
        "library_windowing_windows_per_s": n_windows / win_s,
    }
    for name, (r_read, r_win) in ref.items():
        figures[f"reference_{name}_windowing_s"] = r_win
        figures[f"reference_{name}_windows_per_s"] = n_windows / (r_read + r_win)
        figures[f"reference_{name}_windowing_windows_per_s"] = n_windows / r_win
    for name, (r_read, r_win) in ref.items():
        figures[f"speedup_windowing_vs_{name}_loop"] = r_win / win_s
        figures[f"speedup_files_to_windows_vs_{name}_loop"] = (r_read + r_win) / lib_s
    figures["library_peak_traced_mb"] = peak_lib / 2**20
    figures["process_max_rss_mb"] = max_rss_mb()
    notes = machine_notes() + [
        f"data: {raw} splits {args.splits}, protocol {args.protocol}; library best of {repeats} runs",
        "library windows == both references' windows on every episode (checked before timing)",
        "references: 'python' = per window, per frame, per joint Python loops; 'numpy' = per window, numpy "
        "over the window's frames (stricter)",
        f"target: speedup >= {TARGET_SPEEDUP:g}x; windowing: "
        f"{figures['speedup_windowing_vs_python_loop']:.1f}x (python loop), "
        f"{figures['speedup_windowing_vs_numpy_loop']:.1f}x (numpy loop); files -> windows incl. the shared JSON "
        f"reading: {figures['speedup_files_to_windows_vs_python_loop']:.1f}x / "
        f"{figures['speedup_files_to_windows_vs_numpy_loop']:.1f}x",
    ]
    print_figures(figures, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
