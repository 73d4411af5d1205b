"""``egghand demo``: the whole method end to end on EgoSynth, on a laptop CPU.

Stages (each skipped when its output exists, each resumable when interrupted):
1. generate EgoSynth (preset "bench"; "tiny" with --quick)          -> OUT/data/egosynth
2. prepare it (validation, episodes, canonical windows, statistics) -> OUT/data/prepared
3. train the "cpu-small" model (about 10 minutes on 2 cores)         -> OUT/runs/<config>
4. evaluate EggHand against Static and CVM on the test split        -> OUT/results/evaluation.*
5. modality and egomotion ablations (paper Tables 3-4)              -> OUT/results/ablations.*
6. plots (error vs horizon, ablation bars) and a summary            -> OUT/results/*.png, summary.*

    egghand demo                 # ~15-25 minutes on 2 CPU cores
    egghand demo --quick         # seconds: tiny data, tiny model (a smoke test, not a result)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from egghand_lib.ablations import run_ablations
from egghand_lib.data import prepared
from egghand_lib.data.egosynth import generate_egosynth
from egghand_lib.data.prepare import prepare_dataset
from egghand_lib.evaluation import evaluate, md_table, summary_line
from egghand_lib.io import atomic_path, atomic_write_json, atomic_write_text, claim_output_folder, write_settings
from egghand_lib.models.egghand import EggHandPolicy
from egghand_lib.models.egghand.modeling_egghand import SHIPPED_MINI, SHIPPED_MINI_NAME
from egghand_lib.models.encoders.egovideo_mini import EgoVideoMiniConfig
from egghand_lib.training import TrainConfig, train

DEMO_SETTINGS_NAME = "demo.json"
# Targets of the benchmark (README): the model must clearly beat the better motion baseline.
TARGETS = {"mpjpe": 0.40, "ade": 0.60}


def demo_settings(quick: bool = False, seed: int = 0, train_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything that defines a demo run (stored in OUT/demo.json; a mismatch refuses to mix runs)."""
    return {
        "quick": bool(quick),
        "seed": int(seed),
        "synth_preset": "tiny" if quick else "bench",
        "train_config": "tiny" if quick else "cpu-small",
        "train_overrides": dict(train_overrides or {}),
        "splits": ["train", "val", "test"],
        # frames prepared at the size the model's encoder reads (EgoVideo-mini: 96 px, as EggHand-mini was
        # trained; the tiny model's CNN resizes whatever it gets), so no forecast resizes 224 px frames again
        "frame_size": 224 if quick else EgoVideoMiniConfig.image_size,
        "eval_split": "test",
        "ablations": ["modality", "egomotion"],
    }


def _stage(n: int, title: str) -> float:
    print(f"\n[demo {n}/6] {title}", flush=True)
    return time.perf_counter()


def run_demo(out_dir: str | Path = "egghand_demo", *, quick: bool = False, seed: int = 0, progress: bool = True,
             train_overrides: dict[str, Any] | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Run (or resume) the demo in ``out_dir`` and return its summary (also written to results/summary.json).

    ``train_overrides``: TrainConfig fields to change (e.g. {"max_steps": 300}). ``overwrite``: start over
    when ``out_dir`` holds a demo made with other settings (otherwise that is a ValueError).
    """
    out = Path(out_dir)
    settings = demo_settings(quick, seed, train_overrides)
    claim_output_folder(out, settings, settings_name=DEMO_SETTINGS_NAME, overwrite=overwrite, what="demo")
    out.mkdir(parents=True, exist_ok=True)
    write_settings(out, settings, DEMO_SETTINGS_NAME)
    raw, prep = out / "data" / "egosynth", out / "data" / "prepared"
    run_dir, results = out / "runs" / settings["train_config"], out / "results"
    results.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    t = _stage(1, f"EgoSynth ({settings['synth_preset']} preset, seed {seed}) -> {raw}")
    generate_egosynth(raw, preset=settings["synth_preset"], seed=seed, progress=progress)
    timings["synth"] = time.perf_counter() - t

    t = _stage(2, f"prepare -> {prep}")
    if prepared.is_prepared(prep) and set(prepared.read_manifest(prep)["splits"]) >= set(settings["splits"]):
        print("  done already (manifest.json present)")
    else:
        prepare_dataset(raw, prep, splits=tuple(settings["splits"]), size=settings["frame_size"], progress=progress)
    timings["prepare"] = time.perf_counter() - t

    cfg = TrainConfig.named(settings["train_config"], seed=seed, **settings["train_overrides"])
    t = _stage(3, f"train {cfg.name} ({cfg.max_steps or cfg.epochs} {'steps' if cfg.max_steps else 'epochs'}, "
                  f"batch {cfg.batch_size * cfg.grad_accum_steps}) -> {run_dir}")
    model = train(cfg, run_dir, prep_dir=prep, progress=progress).model  # a finished run is reused as it is
    train_summary = json.loads((run_dir / "summary.json").read_text())
    timings["train"] = time.perf_counter() - t

    t = _stage(4, f"evaluate EggHand vs Static and CVM on {settings['eval_split']} -> {results}")
    if (results / "evaluation.json").is_file():
        print("  done already (evaluation.json present)")
        ev = json.loads((results / "evaluation.json").read_text())
    else:
        ev = evaluate(prep, settings["eval_split"], model, results, progress=progress)
    shipped = None if settings["quick"] else _shipped_comparison(prep, settings, results, progress)
    timings["evaluate"] = time.perf_counter() - t

    t = _stage(5, f"ablations {settings['ablations']} -> {results}")
    if (results / "ablations.json").is_file():
        print("  done already (ablations.json present)")
        ab = json.loads((results / "ablations.json").read_text())
    else:
        ab = run_ablations(prep, results, model, which=settings["ablations"], split=settings["eval_split"],
                           seed=seed, progress=progress)
    timings["ablations"] = time.perf_counter() - t

    t = _stage(6, "plots and summary")
    plots = make_plots(ev, ab, results)
    timings["plots"] = time.perf_counter() - t
    timings["total_this_run"] = time.perf_counter() - t_all

    summary = build_summary(ev, ab, train_summary, timings, settings, plots)
    summary["shipped_egghand_mini"] = shipped
    atomic_write_json(results / "summary.json", summary)
    atomic_write_text(results / "summary.md", summary_markdown(summary))
    print("\n" + summary_line(ev))
    print(summary_text(summary))
    print(f"\nResults: {results.resolve()}")
    return summary


def _shipped_comparison(prep: Path, settings: dict[str, Any], results: Path, progress: bool
                        ) -> dict[str, Any] | None:
    """The shipped EggHand-mini (the same configuration trained longer, data_cards/egghand_mini.md) on the same
    test windows: {"ade", "mpjpe"}; None when this installation has no shipped model."""
    if not (SHIPPED_MINI / "config.json").is_file():
        return None
    path = results / "shipped_egghand_mini.json"
    if path.is_file():
        return json.loads(path.read_text())
    mini = EggHandPolicy.from_pretrained(SHIPPED_MINI_NAME)
    ev = evaluate(prep, settings["eval_split"], mini, None, baselines=(), conventions=("egghand",),
                  progress=progress, name="shipped EggHand-mini")
    m = next(iter(ev["metrics"].values()))["egghand"]["all"]
    out = {"ade": m["ade"], "mpjpe": m["mpjpe"]}
    atomic_write_json(path, out)
    return out


# ----------------------------------------------------------------------------------------------
# Summary


def _metrics(ev: dict[str, Any], method: str, subset: str = "all") -> dict[str, float | None]:
    return ev["metrics"].get(method, {}).get("egghand", {}).get(subset, {})


def build_summary(ev: dict[str, Any], ab: dict[str, Any], train_summary: dict[str, Any], timings: dict[str, float],
                  settings: dict[str, Any], plots: dict[str, str]) -> dict[str, Any]:
    """The headline numbers: metrics, ratios vs the baselines, targets, ablation deltas and timings."""
    ratios = ev.get("ratios", {})
    best_ratio = {k: max((ratios.get(f"EggHand/{b}", {}).get(k) or 0.0) for b in ("Static", "CVM"))
                  for k in ("ade", "fde", "mpjpe", "mpjpe_f")}
    modality = {r["variant"]: r for r in ab.get("rows", []) if r["table"] == "3 modality"}
    return {
        "settings": settings,
        "num_test_windows": ev.get("num_windows"),
        "metrics": {m: _metrics(ev, m) for m in ev.get("methods", [])},
        "ratios": ratios,
        "targets": {f"EggHand/CVM {k}": {"target": v, "value": ratios.get("EggHand/CVM", {}).get(k),
                                         "met": (ratios.get("EggHand/CVM", {}).get(k) or 9e9) <= v}
                    for k, v in TARGETS.items()},
        "worst_ratio_vs_baselines": best_ratio,
        "modality": {v: {"ade": r["ade"], "mpjpe": r["mpjpe"], "ade_vs_clean": r.get("ade_vs_clean"),
                         "mpjpe_vs_clean": r.get("mpjpe_vs_clean")} for v, r in modality.items()},
        "egomotion": {r["variant"]: {"ade": r["ade"], "mpjpe": r["mpjpe"], "windows": r.get("windows")}
                      for r in ab.get("rows", []) if r["table"] == "4 egomotion"},
        "training": {"steps": train_summary.get("steps"), "train_windows": train_summary.get("train_windows"),
                     "elapsed_s": train_summary.get("elapsed_s"), "final_loss": train_summary.get("final_loss")},
        "timings_s": timings,
        "plots": plots,
    }


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def summary_text(s: dict[str, Any]) -> str:
    lines = ["", "EggHand demo summary (EgoSynth, EggHand convention, metres)"]
    for name, t in s["targets"].items():
        lines.append(f"  {name}: {_f(t['value'], 2)} (target <= {t['target']:.2f}) "
                     f"{'MET' if t['met'] else 'NOT MET'}")
    for v, r in s["modality"].items():
        if v != "clean":
            lines.append(f"  {v}: ADE {_f(r['ade'])} ({_pct(r['ade_vs_clean'])} vs clean), "
                         f"MPJPE {_f(r['mpjpe'])} ({_pct(r['mpjpe_vs_clean'])})")
    ego = s["egomotion"]
    if "EggHand top 10%" in ego:
        lines.append(f"  top-10% egomotion: EggHand ADE {_f(ego['EggHand top 10%']['ade'])} vs "
                     f"{_f(ego['EggHand all']['ade'])} on all windows")
    mini, mine = s.get("shipped_egghand_mini"), s["metrics"].get("EggHand", {})
    if mini and mine:
        lines.append(f"  vs the shipped EggHand-mini (same configuration, trained longer): ADE {_f(mine['ade'])} "
                     f"vs {_f(mini['ade'])}, MPJPE {_f(mine['mpjpe'])} vs {_f(mini['mpjpe'])} "
                     "(EggHandPolicy.from_pretrained('egghand-mini'))")
    tm = s["timings_s"]
    lines.append("  time (this run): " + ", ".join(f"{k} {v:.0f}s" for k, v in tm.items()))
    return "\n".join(lines)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:+.1f}%"


def summary_markdown(s: dict[str, Any]) -> str:
    parts = ["# EggHand demo summary\n\n", f"Settings: `{json.dumps(s['settings'])}`\n\n",
             f"Test windows: {s['num_test_windows']}. EggHand convention, metres.\n\n"]
    keys = ("ade", "fde", "mpjpe", "mpjpe_f")
    parts.append(md_table(["method", "ADE", "FDE", "MPJPE", "MPJPE-F"],
                          [[m] + [_f(v.get(k)) for k in keys] for m, v in s["metrics"].items()]))
    parts.append("\n" + md_table(["target", "value", "limit", "met"],
                                 [[n, _f(t["value"], 2), t["target"], t["met"]] for n, t in s["targets"].items()]))
    parts.append("\n" + md_table(["modality", "ADE", "MPJPE", "ADE vs clean", "MPJPE vs clean"],
                                 [[v, _f(r["ade"]), _f(r["mpjpe"]), _pct(r["ade_vs_clean"]), _pct(r["mpjpe_vs_clean"])]
                                  for v, r in s["modality"].items()]))
    parts.append("\n" + md_table(["stage", "seconds (this run)"], [[k, f"{v:.0f}"] for k, v in s["timings_s"].items()]))
    parts.append("\nPlots: " + ", ".join(f"[{k}]({v})" for k, v in s["plots"].items()) + "\n")
    return "".join(parts)


# ----------------------------------------------------------------------------------------------
# Plots


def make_plots(ev: dict[str, Any], ab: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    """error_vs_horizon.png and ablations.png (matplotlib, written atomically); returns file names."""
    out = Path(out_dir)
    files = {}
    conv = "egghand"
    fig = Figure(figsize=(10, 3.8))  # a bare Figure: no pyplot state, no GUI backend
    axes = fig.subplots(1, 2)
    panels = ((axes[0], "ade", "wrist displacement (ADE per frame)"), (axes[1], "mpjpe", "MPJPE per frame"))
    for ax, key, title in panels:
        for m in ev["methods"]:
            curve = [float("nan") if v is None else v for v in ev["per_horizon"][m][conv][key]]
            ax.plot(range(1, len(curve) + 1), curve, marker="o", ms=3, label=m)
        ax.set_xlabel("target frame (10 fps)")
        ax.set_ylabel("metres")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"Error vs horizon on {ev.get('split', 'test')} ({ev['num_windows']} windows)")
    fig.tight_layout()
    files["error_vs_horizon"] = _save(fig, out / "error_vs_horizon.png")

    rows = [r for r in ab.get("rows", []) if r["status"] == "ok" and r["table"] in ("3 modality", "4 egomotion")]
    if rows:
        fig = Figure(figsize=(11, 4))
        axes = fig.subplots(1, 2)
        for ax, table, title in ((axes[0], "3 modality", "modality corruption (Table 3)"),
                                 (axes[1], "4 egomotion", "top-10% egomotion vs all (Table 4)")):
            sel = [r for r in rows if r["table"] == table]
            x = range(len(sel))
            w = 0.4
            ax.bar([i - w / 2 for i in x], [r["ade"] or 0 for r in sel], w, label="ADE")
            ax.bar([i + w / 2 for i in x], [r["mpjpe"] or 0 for r in sel], w, label="MPJPE")
            ax.set_xticks(list(x))
            ax.set_xticklabels([r["variant"].replace(" + ", "\n+ ") for r in sel], rotation=30, ha="right",
                               fontsize=8)
            ax.set_ylabel("metres")
            ax.set_title(title)
            ax.grid(axis="y", alpha=0.3)
        axes[0].legend()
        fig.tight_layout()
        files["ablations"] = _save(fig, out / "ablations.png")
    return files


def _save(fig, path: Path) -> str:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path.name
