"""Forecast accuracy on the EgoSynth bench test split: Static, CVM and EggHand cpu-small, plus the
noisy-vision and dummy-language corruptions of the trained model (paper Table 3 style), and LastPose
(every joint held where it was last seen) as the bar a model must clear to have learnt any motion.

Data: --prep (a prepared folder), else the outputs of a finished ``egghand demo`` under demo_results/,
else EgoSynth "bench" generated and prepared through the library into --work (minutes).
Model: --checkpoint (a training run folder or a saved model), else the demo's model, else trained
here with the library's ``train`` and the "cpu-small" config (about 10 minutes on 2 free cores;
resumable: an interrupted run continues from its last checkpoint in --work).
Metrics: EggHand convention (docs/conventions.md, "Metrics"), metres, on every test window; ratios are to CVM
computed on the same windows in the same run.

    python bench/accuracy.py                   # EgoSynth bench, cpu-small
    python bench/accuracy.py --checkpoint runs/cpu-small
    python bench/accuracy.py --tiny            # tiny data, "tiny" model, a few steps (CI)
    python bench/accuracy.py --seeds 3 --head-init --jobs 2   # Tables 3 and 5 over three trainings, two at a time
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import (
    DEFAULT_WORK,
    locate_prepared,
    machine_notes,
    print_figures,
    setup_env,
)

TARGETS = {"mpjpe": 0.40, "ade": 0.60}  # EggHand / CVM (the paper reaches 0.46 and 0.78 on EgoExo4D)
MEASURABLE = 1.01  # a corrupted input counts as "worse" when ADE or MPJPE grows by >= 1% (and neither shrinks)
KEYS = ("ade", "fde", "mpjpe", "mpjpe_f")
VARIANTS = {"noisy_vision": "noisy vision", "dummy_language": "dummy language",
            "noisy_vision_dummy_language": "noisy vision + dummy language"}


def load_model(path: Path):
    """(model, description) from a finished run folder, a saved model folder, or a training checkpoint
    (``run/checkpoints/step_XXXXXX``, or a run folder without ``model/``: its latest checkpoint)."""
    import json

    from egghand_lib.models.egghand import EggHandPolicy
    from egghand_lib.training import TrainConfig, build_model, list_checkpoints, load_checkpoint

    if (path / "config.json").is_file() or (path / "model" / "config.json").is_file():
        return EggHandPolicy.from_pretrained(path), f"loaded from {path}"
    ckpt = path if (path / "state.json").is_file() else (list_checkpoints(path) or [None])[-1]
    if ckpt is None:
        raise FileNotFoundError(f"--checkpoint {path}: no saved model, run folder or training checkpoint")
    run_dir = ckpt.parent.parent
    cfg = TrainConfig.from_dict(json.loads((run_dir / "train_config.json").read_text()))
    model = build_model(cfg)
    state = load_checkpoint(ckpt, model)  # trainable weights + buffers (normalisation statistics included)
    total = state.get("total_steps")
    status = "finished" if total is not None and state["step"] >= total else "training NOT finished"
    return model, f"checkpoint {ckpt} (config {cfg.name}, step {state['step']} of {total}: {status})"


def _train_job(cfg, run_dir: Path, prep: Path, threads: int) -> float:
    """One training in a --jobs worker process (``threads`` torch threads); returns its wall time (s)."""
    import torch

    from egghand_lib.training import train

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    train(cfg, run_dir, prep_dir=prep, progress=False)
    return time.perf_counter() - t0


def train_in_parallel(jobs: list[tuple[object, Path, Path]], workers: int) -> dict[Path, float]:
    """Run the trainings ``jobs`` = [(TrainConfig, run folder, prepared folder)] in ``workers`` processes, the
    cores split between them; a finished run is reused, an interrupted one resumes. -> {run folder: seconds}.

    The runs share one feature folder: the first to need a cache builds it, the others wait for it (its lock).
    """
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    workers = min(workers, len(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers)
    print(f"# training {len(jobs)} models, {workers} at a time, {threads} thread(s) each", flush=True)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_train_job, cfg, run_dir, prep, threads): run_dir for cfg, run_dir, prep in jobs}
        seconds = {}
        for future, run_dir in futures.items():
            seconds[run_dir] = future.result()
            print(f"# trained {run_dir} in {seconds[run_dir]:.0f} s", flush=True)
    return seconds


SEED_NOTE = ("egghand_ade", "egghand_mpjpe", "noisy_vision_over_clean_ade", "dummy_language_over_clean_ade",
             "noisy_vision_dummy_language_over_clean_ade", "random_head_over_pretrained_ade")


def seed_figures(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """The figures of one trained model: {method or corruption: metrics} -> {name: value} (ratios to CVM, to
    LastPose, and of each corruption to the clean model, all on the same windows)."""
    figs: dict[str, float] = {}
    for name, m in metrics.items():
        label = name.lower()
        for k in KEYS:
            figs[f"{label}_{k}"] = m[k]
        if name in ("Static", "LastPose", "EggHand"):
            for k in KEYS:
                figs[f"{label}_over_cvm_{k}"] = m[k] / metrics["CVM"][k]
    for k in KEYS:
        figs[f"egghand_over_lastpose_{k}"] = metrics["EggHand"][k] / metrics["LastPose"][k]
    for key in VARIANTS:
        for k in ("ade", "mpjpe"):
            figs[f"{key}_over_clean_{k}"] = metrics[key][k] / metrics["EggHand"][k]
    return figs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny EgoSynth and a few training steps (CI)")
    ap.add_argument("--prep", type=Path, default=None, help="prepared folder with train and test splits")
    ap.add_argument("--raw", type=Path, default=None, help="EgoSynth/EgoExo4D-layout folder to prepare")
    ap.add_argument("--checkpoint", type=Path, default=None, help="trained model: run folder or saved model")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="folder for generated data and the run")
    ap.add_argument("--split", default="test")
    ap.add_argument("--train-split", default="train")
    ap.add_argument("--max-steps", type=int, default=None, help="override the training config's steps")
    ap.add_argument("--max-windows", type=int, default=None, help="evaluate an evenly spaced subset")
    ap.add_argument("--seed", type=int, default=0, help="seed of the corruptions")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=1,
                    help="trainings of the model, seeds 42, 43, ...: figures are their mean (and *_sd)")
    ap.add_argument("--first-seed", type=int, default=None,
                    help="the first training seed (default: the config's, 42); --first-seed 43 --seeds 2: 43 and 44")
    ap.add_argument("--jobs", type=int, default=1,
                    help="trainings run at once, the cores shared between them (on 2 cores, --jobs 2 with one thread "
                         "each gets more steps per second than one training on both)")
    ap.add_argument("--head-init", action="store_true",
                    help="also train each seed from a random head (paper Table 5): random_head_over_pretrained_*")
    args = ap.parse_args()
    if args.seeds < 1:
        ap.error("--seeds: must be >= 1")
    if args.jobs < 1:
        ap.error("--jobs: must be >= 1")
    setup_env(args.threads or (1 if args.tiny else None))
    from egghand_lib.ablations import make_corruption, task_vocabulary
    from egghand_lib.evaluation import (
        baseline_forecasts,
        open_datasets,
        predict_model,
        select_windows,
        subset_indices,
    )
    from egghand_lib.metrics import forecast_metrics
    from egghand_lib.training import TrainConfig, train

    prep, demo = locate_prepared(args.prep, args.raw, args.work, args.tiny)
    ckpt = args.checkpoint or (demo.get("model") if args.prep is None and args.raw is None else None)
    if ckpt is not None and args.checkpoint is None:  # reuse the demo's model only if it is cpu-small
        import json

        if json.loads((ckpt / "config.json").read_text()).get("preset_name") != "cpu-small":
            ckpt = None

    if ckpt is not None and (args.seeds > 1 or args.head_init):
        raise SystemExit("--seeds > 1 and --head-init train their own models: drop --checkpoint (or the demo's)")
    loaded = load_model(Path(ckpt)) if ckpt is not None else None
    protocol = loaded[0].config.protocol if loaded else "future"  # the cpu-small and tiny configs' protocol
    ds, train_ds = open_datasets(prep, args.split, args.train_split, protocol)
    idx = subset_indices(len(ds), args.max_windows)
    arrays = select_windows(ds.arrays(), idx)
    gt, valid = arrays["future_joints"], arrays["future_valid"]
    base = baseline_forecasts(arrays, train_ds.arrays(), protocol, ("Static", "CVM", "LastPose"))
    base_metrics = {name: forecast_metrics(p, gt, valid, convention="egghand") for name, p in base.items()}
    vocab = task_vocabulary(sorted(set(train_ds.arrays()["task"])))

    def run_config(seed: int, head: str | None) -> tuple[TrainConfig, Path]:
        """The cpu-small (tiny) training of ``seed`` with decoder_init ``head`` (None: the config's), and its folder."""
        over = {"eval_split": None, "max_steps": args.max_steps or (8 if args.tiny else None),
                "train_split": args.train_split, "seed": seed,
                "feature_cache_dir": str(args.work / "features")}  # the frozen encoder runs once for all trainings
        cfg = TrainConfig.named("tiny" if args.tiny else "cpu-small",
                                **{k: v for k, v in over.items() if v is not None or k == "eval_split"})
        if head is not None:
            cfg = cfg.replace(model_overrides={**cfg.model_overrides, "decoder_init": head})
        name = "run_tiny" if args.tiny else "run_bench"
        name += "" if seed == default_seed else f"_seed{seed}"  # a seed's run keeps its folder whatever --first-seed
        name += "" if head is None else f"_{head}_head"
        return cfg, args.work / name

    job_seconds: dict[Path, float] = {}  # trainings run by --jobs workers: their wall time

    def trained(seed: int, head: str | None) -> tuple[object, str, float | None]:
        """A finished training of ``seed`` with head ``head`` (a finished run, e.g. a --jobs worker's, is reused)."""
        cfg, run_dir = run_config(seed, head)
        t0 = time.perf_counter()
        res = train(cfg, run_dir, prep_dir=prep, progress=not args.tiny)
        return res.model, (f"trained here: config {cfg.name}, seed {seed}, {res.step} steps x batch "
                           f"{cfg.batch_size} ({res.out_dir})"), job_seconds.get(run_dir, time.perf_counter() - t0)

    def measured(model) -> tuple[dict[str, dict[str, float]], float]:
        """{"EggHand" | corruption key: metrics} of one model on the windows, and its forecast time (s)."""
        t0 = time.perf_counter()
        out = {"EggHand": predict_model(model, ds, idx, batch_size=32, progress=False)[0]}
        forecast_s = time.perf_counter() - t0
        for key, variant in VARIANTS.items():
            out[key] = predict_model(model, ds, idx, batch_size=32, progress=False,
                                     transform=make_corruption(variant, vocab, args.seed))[0]
        return {k: forecast_metrics(p, gt, valid, convention="egghand") for k, p in out.items()}, forecast_s

    default_seed = TrainConfig.named("tiny" if args.tiny else "cpu-small").seed
    seeds = [(default_seed if args.first_seed is None else args.first_seed) + k for k in range(args.seeds)]
    if loaded is None and args.jobs > 1:
        jobs = [(*run_config(seed, head), prep) for seed in seeds for head in ((None, "random") if args.head_init
                                                                                else (None,))]
        job_seconds.update(train_in_parallel(jobs, args.jobs))
    runs, sources = [], []
    for seed in seeds:
        train_s = None
        if loaded is not None:
            model, source = loaded
        else:
            model, source, train_s = trained(seed, None)
        metrics, forecast_s = measured(model)
        metrics.update(base_metrics)
        figs = seed_figures(metrics)
        figs["forecast_ms_per_window"] = 1e3 * forecast_s / len(idx)
        if train_s is not None:
            figs["train_s"] = train_s
        if args.head_init:  # Table 5: the same training from a randomly initialised head
            random_model, _, _ = trained(seed, "random")
            random_metrics = predict_model(random_model, ds, idx, batch_size=32, progress=False)[0]
            rm = forecast_metrics(random_metrics, gt, valid, convention="egghand")
            for k in ("ade", "mpjpe"):
                figs[f"random_head_{k}"] = rm[k]
                figs[f"random_head_over_pretrained_{k}"] = rm[k] / metrics["EggHand"][k]
        runs.append(figs)
        sources.append(source)
    figs = {"test_windows": len(idx), "trainings": len(runs)}
    for name in runs[0]:
        values = np.array([r[name] for r in runs], float)
        figs[name] = values.mean()
        if len(runs) > 1 and not name.startswith(("static_", "cvm_", "lastpose_")):  # baselines: no spread
            figs[f"{name}_sd"] = values.std(ddof=1)
    metrics = {"EggHand": {k: figs[f"egghand_{k}"] for k in KEYS}, "LastPose": base_metrics["LastPose"]}
    per_seed = [f"seed {seed}: " + ", ".join(f"{k} {r[k]:.4g}" for k in SEED_NOTE if k in r)
                for seed, r in zip(seeds, runs, strict=True)] if len(runs) > 1 else []

    verdict = []
    for k, target in TARGETS.items():
        r = figs[f"egghand_over_cvm_{k}"]
        status = "met" if r <= target else "NOT met"
        verdict.append(f"EggHand/CVM {k.upper()} {r:.3f} (target <= {target:.2f}: {status})")
    beats = [k.upper() for k in KEYS if metrics["EggHand"][k] < metrics["LastPose"][k]]
    change = {key: 100 * (figs[f"{key}_over_clean_ade"] - 1) for key in VARIANTS}
    worse_single = max(change["noisy_vision"], change["dummy_language"])
    for key, target in (("noisy_vision", 15.0), ("dummy_language", 5.0), ("noisy_vision_dummy_language", worse_single)):
        status = "met" if change[key] >= target else "NOT met"
        verdict.append(f"{VARIANTS[key]}: {change[key]:+.1f}% ADE (target >= +{target:.1f}%: {status})")
    if args.head_init:
        r = figs["random_head_over_pretrained_ade"]
        status = "met" if r >= 1.10 else "NOT met"
        verdict.append(f"random head / pretrained head ADE {r:.3f} at the same steps (target >= 1.10: {status})")
    verdict.append(f"EggHand beats LastPose (holding the last pose) on: {', '.join(beats) or 'nothing'}")
    for key in VARIANTS:
        ade_x, mpjpe_x = figs[f"{key}_over_clean_ade"], figs[f"{key}_over_clean_mpjpe"]
        worse = min(ade_x, mpjpe_x) >= 1.0 and max(ade_x, mpjpe_x) >= MEASURABLE
        verdict.append(f"{VARIANTS[key]}: {'measurably worse than' if worse else 'NOT measurably worse than'} the "
                       f"full model (x{ade_x:.3f} ADE, x{mpjpe_x:.3f} MPJPE; measurable = x{MEASURABLE} or more)")
    if len(runs) > 1:
        verdict.append(f"figures are means over {len(runs)} trainings (seeds {seeds}); *_sd: their standard "
                       "deviation")
    notes = machine_notes() + [
        f"data: {prep}, split {args.split} ({len(idx)} windows), Static fitted on {args.train_split}",
        *(f"model: EggHand {model.config.preset_name} {src}" for src in sources),
        "metrics: EggHand convention (R-MPJPE), metres; ratios to CVM on the same windows",
        *per_seed,
        *verdict,
    ]
    print_figures(figs, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
