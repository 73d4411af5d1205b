"""Shared helpers of the bench/ scripts: figures output, timing statistics, machine facts, EgoSynth data.

Every bench script measures in one run and prints its figures LAST as ``name: value`` lines (one
figure per line, a plain number; ratios are against a baseline measured in the same run). Human
readable context (targets, notes) is printed before them as lines starting with ``#``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORK = REPO / "runs" / "bench"  # /runs/ is git-ignored


def setup_env(threads: int | None = None) -> None:
    """Offline hub, quiet tokenizers and a fixed number of torch threads (default: all cores, 2 here)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(int(threads or os.cpu_count() or 1))


def print_figures(figures: dict[str, float], notes: list[str] | None = None) -> None:
    """The bench's output contract: optional ``# note`` lines, then ``name: value`` lines, last."""
    for line in notes or []:
        print(f"# {line}")
    for name, value in figures.items():
        v = float(value)
        print(f"{name}: {v:.6g}" if math.isfinite(v) else f"{name}: nan")
    sys.stdout.flush()


def machine_notes() -> list[str]:
    """Facts about the machine the figures come from (cores, load, torch)."""
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return [
        f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()} "
        f"torch_threads={torch.get_num_threads()} torch={torch.__version__} python={platform.python_version()}",
        f"load average (1/5/15 min) at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        "(> cores means other processes shared the CPU)",
    ]


def time_calls(fn: Callable[[], object], n: int, warmup: int = 3) -> list[float]:
    """Wall-clock seconds of ``n`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def percentile(xs: list[float], q: float) -> float:
    """Linear-interpolation percentile (q in [0, 100]) of a non-empty list."""
    s = sorted(xs)
    if not s:
        raise ValueError("percentile: no values")
    k = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def max_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------------------------ EgoSynth data

# --tiny: a few seconds of generation (3 short takes at 64 px); the real runs use the "bench" preset.
TINY_SYNTH = dict(num_takes={"train": 2, "val": 1, "test": 1}, duration_sec=(3.0, 4.0), image_size=64, workers=1)


def ensure_egosynth(raw_dir: Path, tiny: bool, seed: int = 0) -> Path:
    """The EgoSynth folder at ``raw_dir`` (generated through the library when absent; reused if complete)."""
    from egghand_lib.data.egosynth import GENERATOR_VERSION, generate_egosynth

    old = raw_dir / "manifest.json"
    if old.is_file() and (raw_dir / "takes.json").is_file():  # a complete generation (the manifest is written last)
        if json.loads(old.read_text()).get("version") == GENERATOR_VERSION:
            return raw_dir
    overwrite = old.is_file()  # made by another EgoSynth version: made again
    if tiny:
        return generate_egosynth(raw_dir, preset="tiny", seed=seed, progress=False, overwrite=overwrite, **TINY_SYNTH)
    return generate_egosynth(raw_dir, preset="bench", seed=seed, progress=True, overwrite=overwrite)


def ensure_prepared(raw_dir: Path, prep_dir: Path, tiny: bool) -> Path:
    """The prepared folder (train/val/test) at ``prep_dir``, made by the library when absent (resumes)."""
    from egghand_lib.data.prepare import prepare_dataset
    from egghand_lib.data.prepared import check_source, is_prepared, read_manifest

    if is_prepared(prep_dir):
        try:
            check_source(read_manifest(prep_dir), prep_dir)
            return prep_dir
        except ValueError:
            pass  # prepared from another EgoSynth version: prepared again (same settings: stale episodes rewritten)
    prepare_dataset(raw_dir, prep_dir, splits=("train", "val", "test"), size=64 if tiny else 224,
                    progress=not tiny)
    return prep_dir


def locate_prepared(prep: Path | None, raw: Path | None, work: Path, tiny: bool) -> tuple[Path, dict[str, Path]]:
    """(prepared folder, the demo's outputs) of a bench run: ``prep`` if given; else the demo's prepared
    folder (unless ``raw`` is given or ``tiny``); else ``raw`` (or the demo's, or a generated EgoSynth)
    prepared into ``work``."""
    tag = "tiny" if tiny else "bench"
    demo = {} if tiny else find_demo_outputs()
    prep = prep or (demo.get("prep") if raw is None else None)
    if prep is None:
        raw = raw or demo.get("raw") or ensure_egosynth(work / f"raw_{tag}", tiny)
        prep = ensure_prepared(raw, work / f"prep_{tag}", tiny)
    return Path(prep), demo


DEMO_ROOTS = (REPO / "egghand_demo", REPO / "demo_results")  # `egghand demo` defaults to ./egghand_demo


def find_demo_outputs(roots: tuple[Path, ...] = DEMO_ROOTS) -> dict[str, Path]:
    """Folders a finished ``egghand demo`` left: raw EgoSynth, prepared data, trained model.

    Recognised by their marker files (EgoSynth: manifest.json + takes.json; prepared: manifest.json +
    settings.json; model: a folder named ``model`` with config.json + model.safetensors). Missing ones
    are absent from the result; the first root holding anything wins.
    """
    for root in roots:
        found: dict[str, Path] = {}
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            if not p.is_dir() or len(p.relative_to(root).parts) > 4:
                continue
            if "raw" not in found and (p / "takes.json").is_file() and (p / "manifest.json").is_file():
                found["raw"] = p
            elif "prep" not in found and (p / "settings.json").is_file() and (p / "manifest.json").is_file():
                found["prep"] = p
            elif ("model" not in found and p.name == "model" and (p / "config.json").is_file()
                  and (p / "model.safetensors").is_file()):
                found["model"] = p
        if found:
            return found
    return {}
