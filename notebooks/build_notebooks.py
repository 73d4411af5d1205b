"""Write the numbered notebooks from this one file (clean: no outputs), so they stay reviewable as code.

    python notebooks/build_notebooks.py          # rewrites notebooks/NN_*.ipynb

Every notebook: a first cell that installs the toolkit on Colab only, one cell tagged "parameters"
(small defaults so `pytest --nbmake notebooks/` runs it in well under 3 minutes on 2 cores; the markdown
above it says what to change for a real run), narrative markdown between steps, and only calls into
egghand_lib (the viz package and notebook_utils.py hold anything the cells reuse).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

COLAB = '''\
# Colab only: fetch the toolkit and install its requirements. Anywhere else this cell does nothing.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    REPO_URL = "https://github.com/YOUR-ORG/egghand-toolkit.git"  # placeholder: the git URL of your copy
    REPO_DIR = "/content/egghand-toolkit"
    if not os.path.isdir(REPO_DIR):
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, REPO_DIR], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", "requirements.txt"], cwd=REPO_DIR, check=True)
    sys.path.insert(0, REPO_DIR)
    os.chdir(os.path.join(REPO_DIR, "notebooks"))'''

COLAB_MD = """\
**Running on Colab?** The next cell clones the repository and installs `requirements.txt` (set `REPO_URL` to
your copy of the repository first; if pip upgrades torch, use *Runtime > Restart session* once and run again).
On your own machine, install once with `pip install -r requirements.txt` from the repository root and open
this notebook from the `notebooks/` folder: the cell below is skipped."""

DATA_PARAMS = '''\
OUT_ROOT = "../runs/notebooks"  # every output of the notebooks goes below this folder (relative to notebooks/)
SYNTH_PRESET = "tiny"           # EgoSynth size: "tiny" (4 short takes, seconds) or "bench" (72 takes, minutes)
SEED = 0'''


def md(text: str):
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str, tags: list[str] | None = None):
    cell = new_code_cell(textwrap.dedent(text).strip())
    if tags:
        cell.metadata["tags"] = tags
    return cell


def params(text: str):
    return code(text, tags=["parameters"])


def notebook(title_md: str, cells: list) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [md(title_md), md(COLAB_MD), code(COLAB)] + cells
    for k, cell in enumerate(nb.cells):
        cell.id = f"cell-{k:02d}"  # stable ids: rebuilding an unchanged notebook changes nothing
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def setup(*, numpy: bool = False, windows: bool = False) -> str:
    """The first code cell of every notebook; imports beyond the shared ones only where the notebook uses them."""
    lines = ["from pathlib import Path", ""]
    lines += ["import numpy as np"] if numpy else []
    lines += ["from IPython.display import Markdown, display", "", "from egghand_lib import notebook_utils as nu",
              "from egghand_lib import viz"]
    lines += ["from egghand_lib.data.windows import WindowDataset"] if windows else []
    lines += ["", "nu.limit_threads()", "out_root = Path(OUT_ROOT)",
              'data_dir = out_root / "data" / f"egosynth-{SYNTH_PRESET}-seed{SEED}"', "nu.environment_summary()"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# 00 quickstart
# ----------------------------------------------------------------------------------------------------

def quickstart() -> nbformat.NotebookNode:
    return notebook(
        """
        # 00 · Quickstart: forecast two hands one second ahead

        EggHand looks at **2 s of egocentric observation** (the 3D joints of both hands at 10 fps, the head
        camera's pose, 4 video frames) and a **task prompt**, and forecasts the **next second** of all 42 hand
        joints. This notebook runs the whole loop on EgoSynth, the toolkit's synthetic stand-in for EgoExo4D:

        1. generate and prepare a small dataset,
        2. train a small model (or load one),
        3. compare it with the Static and constant-velocity baselines,
        4. look at a forecast in 3D.
        """,
        [
            md("""
            ## Parameters

            The defaults are tiny so the notebook runs in a minute or two on a laptop CPU (and in CI). For a
            real result set `SYNTH_PRESET = "bench"`, `TRAIN_CONFIG = "cpu-small"` and `MAX_STEPS = None` (about
            10 minutes of training on 2 cores), or point `PRETRAINED` at a finished run folder
            (`egghand train --out RUN` or `egghand demo`).
            """),
            params(DATA_PARAMS + '''
TRAIN_CONFIG = "tiny"   # named training config: "tiny" (seconds), "cpu-small" (the README's model), "paper" (GPU)
MAX_STEPS = 10          # optimizer steps; None = the config's own length
PRETRAINED = None       # a finished run or saved-model folder to load instead of training
EVAL_MAX_WINDOWS = 64   # None = the whole test split'''),
            code(setup(windows=True)),
            md("""
            ## 1 · Data

            `egosynth_prepared` generates EgoSynth in the EgoExo4D file layout (`takes.json`,
            `annotations/ego_pose/...`, an mp4 per take) and runs `egghand prepare` on it: validation, 10 fps
            episodes, decoded frames and the training split's normalisation statistics. Both steps are skipped
            when their output exists.
            """),
            code('''
            prep_dir = nu.egosynth_prepared(data_dir, preset=SYNTH_PRESET, seed=SEED)
            train_ds = WindowDataset(prep_dir, "train")
            test_ds = WindowDataset(prep_dir, "test")
            print(f"{len(train_ds)} training windows, {len(test_ds)} test windows")
            print("tasks:", sorted(set(train_ds.arrays()["task"])))'''),
            md("""
            One item of the dataset is one **window**: 20 observed frames, 10 target frames and 4 video frames,
            everything already expressed in the *canonical frame* of the first observed camera (notebook 01 shows
            what that means). Missing joints travel as `False` in the `*_valid` masks, never as zeros.
            """),
            code('''
            window = test_ds[nu.pick_windows(test_ds, 1)[0]]
            {k: (tuple(v.shape), str(v.dtype)) if hasattr(v, "shape") else v for k, v in window.items()}'''),
            md("""
            ## 2 · Train (or load) a model

            `train_or_load` trains the named configuration into a run folder (checkpoints, `metrics.csv`, the final
            `model/`) and simply loads the model when that run already finished; an interrupted run resumes.
            """),
            code('''
            run_dir = out_root / "models" / f"{SYNTH_PRESET}-seed{SEED}-{TRAIN_CONFIG}-{MAX_STEPS}"
            if PRETRAINED:
                from egghand_lib.models.egghand import EggHandPolicy

                model, run_dir = EggHandPolicy.from_pretrained(PRETRAINED).eval(), Path(PRETRAINED)
            else:
                model, run_dir = nu.train_or_load(TRAIN_CONFIG, prep_dir, run_dir, max_steps=MAX_STEPS, eval_split=None)
            print(model.parameter_summary())'''),
            code('''
            if (run_dir / "metrics.csv").is_file():
                viz.training_curve_figure(nu.training_history(run_dir), title="training loss")'''),
            md("""
            ## 3 · Compare with the baselines

            **Static** repeats the mean training pose; **CVM** extrapolates every joint at constant velocity. ADE/FDE
            measure the wrists (average / final frame), MPJPE the wrist-relative hand shape (metres, EggHand
            convention). With the tiny defaults the model has seen a few hundred windows for a few steps: expect it
            to lose to CVM here. The `cpu-small` model trained on `bench` data is the one meant to beat both (its
            figures are in the README / BENCHMARKS.md).
            """),
            code('''
            from egghand_lib.evaluation import evaluate

            results = evaluate(prep_dir, "test", model, out_dir=out_root / "00_quickstart" / "eval",
                               max_windows=EVAL_MAX_WINDOWS, progress=False)
            display(Markdown(viz.metrics_table_markdown(nu.metrics_rows(results))))'''),
            code('''
            fig = viz.horizon_error_figure(nu.horizon_curves(results, "ade"), ylabel="wrist error (m)",
                                           title="wrist error per forecast horizon")
            viz.save_figure(fig, out_root / "00_quickstart" / "horizon.png");'''),
            md("""
            ## 4 · Look at a forecast in 3D

            Blue is what the model saw, green what really happened, red its forecast. Press **Play** or drag the
            slider: frames `t-19 … t+0` are the observation, `t+1 … t+10` the forecast horizon. The grey pyramid
            is the head camera; dotted lines are the wrists' paths over the whole window.
            """),
            code('''
            i = nu.pick_windows(test_ds, 1)[0]
            window = test_ds[i]
            forecast = nu.forecast_fn(model)(window)
            viz.window_figure(window, forecast, intrinsics=nu.window_intrinsics(test_ds, i))'''),
            md("""
            The same window in the **world frame**: the scene as it was recorded, the camera moving with the head.
            The model never sees this frame; its inputs and outputs live in the canonical frame.
            """),
            code('''
            viz.window_figure(window, forecast, frame="world", intrinsics=nu.window_intrinsics(test_ds, i))'''),
            md("""
            ## Where next

            - **01_canonicalization**: what the canonical frame removes and keeps; egomotion and its top-10% subset.
            - **02_finetune_gpu**: the paper configuration (EgoVideo + GR00T N1.5) on a GPU.
            - **03_ablations**: the paper's Tables 2-5 on your data.
            - **04_visualization**: overlays on the video, language steering, sampled hypotheses, GLB meshes.
            """),
        ],
    )


# ----------------------------------------------------------------------------------------------------
# 01 canonicalization
# ----------------------------------------------------------------------------------------------------

def canonicalization() -> nbformat.NotebookNode:
    return notebook(
        """
        # 01 · The canonical frame and egomotion

        EgoExo4D records hands in a gravity-aligned **world frame** (z up) whose origin and heading are
        arbitrary per recording. A forecaster should not have to learn where the person stood or which way
        they faced, so every window is re-expressed in a **canonical frame** built from the camera at the first
        observed frame (docs/conventions.md, "Coordinate frames"):

        - origin at that camera's centre,
        - +x along the horizontal part of its viewing direction,
        - the up axis unchanged, so gravity is kept.

        Translation and heading go; gravity, the hands' shape and everything that moves *inside* the window
        (including the head's own motion, **egomotion**) stay. This notebook shows both frames on EgoSynth,
        checks those claims numerically, and looks at the egomotion score and its top-10% subset.
        """,
        [
            md("""
            ## Parameters

            `EGOEXO4D_PREP`: a folder prepared from real EgoExo4D with `egghand prepare` (see
            `data_cards/egoexo4d.md`); when set, the last section repeats the plots on it.
            """),
            params(DATA_PARAMS + '''
EGOEXO4D_PREP = None    # e.g. "/data/egoexo4d_prepared"
EGOEXO4D_SPLIT = "val"  # EgoExo4D's val split is the paper's test set
TOP_FRACTION = 0.1      # the paper's "top 10%" egomotion subset'''),
            code(setup(numpy=True, windows=True)),
            code('''
            prep_dir = nu.egosynth_prepared(data_dir, preset=SYNTH_PRESET, seed=SEED)
            ds = WindowDataset(prep_dir, "train")
            print(f"{len(ds)} windows from {len(ds.episodes)} episodes")'''),
            md("""
            ## 1 · An episode in the world frame

            Wrist paths of one episode, the head camera's path and its frustum every second. In the world frame the
            numbers depend on where the recording happened to start.
            """),
            code('''
            ep = ds.episodes[0]
            viz.trajectory_figure(ep.joints, ep.valid, ep.extrinsics, ep.intrinsics, camera_every=10,
                                  title=f"{ep.task} (world frame)")'''),
            md("""
            ## 2 · One window, two frames

            The same window in the world frame and in its canonical frame. In the canonical frame the first camera
            sits at the origin looking along +x; the head still moves during the window (watch the frustum).
            """),
            code('''
            i = nu.pick_windows(ds, 1)[0]
            window, K = ds[i], nu.window_intrinsics(ds, i)
            viz.window_figure(window, frame="world", intrinsics=K)'''),
            code('''
            viz.window_figure(window, frame="canonical", intrinsics=K)'''),
            md("""
            ## 3 · What the transform removes and what it keeps, in numbers

            For every window: the first camera's centre (should be 0), the sideways component of its horizontal
            viewing direction (0) and its forward component (> 0), how far the up axis moves (0), and how much the
            bone lengths change (0: the transform is rigid). `canonical_checks` also maps the canonical joints back
            to the world with the window's transform and compares them with the episode's stored world joints.
            """),
            code('''
            checks = nu.canonical_checks(ds)
            display(Markdown(nu.checks_markdown(checks)))'''),
            md("""
            Removing position and heading is what makes windows comparable: below, the right wrist at the current
            frame of every window, seen from above. In the world frame the points scatter with the person's
            position and heading; in the canonical frame they gather in front of the camera (+x).
            """),
            code('''
            fig = viz.topdown_scatter_figure(nu.wrist_positions(ds), title="right wrist at t, seen from above")
            viz.save_figure(fig, out_root / "01_canonicalization" / "wrist_topdown.png");'''),
            md("""
            ## 4 · Egomotion

            The egomotion score of a window is the mean Frobenius norm of the change of the 3x4 camera matrix
            between consecutive frames (docs/conventions.md, "Egomotion"). The paper reports metrics on the windows
            at or above the
            90th percentile (**top 10%**), where the head moves most and forecasting in a camera-anchored frame is
            hardest.
            """),
            code('''
            scores = ds.arrays()["egomotion"]
            fig = viz.egomotion_histogram_figure(scores, fraction=TOP_FRACTION, title="egomotion of training windows")
            viz.save_figure(fig, out_root / "01_canonicalization" / "egomotion.png");'''),
            md("""
            The calmest and the most agitated window side by side (world frame: the frustums show the head).
            """),
            code('''
            calm, agitated = int(np.nanargmin(scores)), int(np.nanargmax(scores))
            print(f"scores: calm {scores[calm]:.4f}, agitated {scores[agitated]:.4f}")
            viz.window_figure(ds[calm], frame="world", title=f"calmest window ({scores[calm]:.4f})")'''),
            code('''
            viz.window_figure(ds[agitated], frame="world", title=f"most egomotion ({scores[agitated]:.4f})")'''),
            md("""
            Do the baselines suffer on the top-10% windows? `evaluate` without a model reports Static and CVM on
            all test windows and on the top subset.
            """),
            code('''
            from egghand_lib.evaluation import evaluate

            res = evaluate(prep_dir, "test", None, top_fraction=TOP_FRACTION, progress=False)
            rows = {f"{m} ({s})": v for s in ("all", "top") for m, v in nu.metrics_rows(res, subset=s).items()}
            display(Markdown(viz.metrics_table_markdown(rows, bold_best=False)))
            print(f"top subset: {res['num_top']} of {res['num_windows']} test windows")'''),
            md("""
            ## 5 · Real EgoExo4D

            Set `EGOEXO4D_PREP` to a prepared EgoExo4D folder to see the same pictures on real data.
            """),
            code('''
            if EGOEXO4D_PREP:
                real = WindowDataset(EGOEXO4D_PREP, EGOEXO4D_SPLIT)
                display(Markdown(nu.checks_markdown(nu.canonical_checks(real))))
                viz.topdown_scatter_figure(nu.wrist_positions(real), title="EgoExo4D: right wrist at t")
                viz.egomotion_histogram_figure(real.arrays()["egomotion"], fraction=TOP_FRACTION)
            else:
                print("EGOEXO4D_PREP is not set: skipping the EgoExo4D section (see data_cards/egoexo4d.md).")'''),
        ],
    )


# ----------------------------------------------------------------------------------------------------
# 02 finetune on a GPU
# ----------------------------------------------------------------------------------------------------

def finetune_gpu() -> nbformat.NotebookNode:
    return notebook(
        """
        # 02 · Fine-tuning the paper configuration on a GPU

        The paper's EggHand is a frozen **EgoVideo** video-text encoder, linear adapters, and the **GR00T N1.5**
        flow-matching action head (about 1.07 B parameters) initialised from the GR00T-N1.5-3B checkpoint,
        fine-tuned with AdamW (lr 3e-5, effective batch 64, 10 epochs) on EgoExo4D (docs/conventions.md, "Model"
        and "Training").

        This notebook runs that configuration when it can: a CUDA GPU, the EgoVideo checkpoint
        (`ckpt_4frames.pth`) and a GR00T-N1.5-3B directory given below. **Without them it says so and runs the
        `cpu-small` configuration on EgoSynth instead**, a few steps only, so every cell still works.
        """,
        [
            md("""
            ## Parameters

            For the paper run set `EGOVIDEO_CHECKPOINT`, `GR00T_DIR` and `EGOEXO4D_PREP` (prepared with
            `egghand prepare --splits egghand-train egghand-val`), and `PAPER_MAX_STEPS = None` for the full 10 epochs.
            On CPU, `CPU_MAX_STEPS = None` trains cpu-small for its full 600 steps (about 10 minutes on 2 cores).
            """),
            params(DATA_PARAMS + '''
EGOVIDEO_CHECKPOINT = None  # path to EgoVideo's ckpt_4frames.pth
GR00T_DIR = None            # GR00T-N1.5-3B folder (model.safetensors.index.json + shards)
EGOEXO4D_PREP = None        # prepared EgoExo4D folder with the egghand-train / egghand-val splits
PAPER_MAX_STEPS = None      # None = 10 epochs, as in the paper
CPU_MAX_STEPS = 5           # cpu-small fallback: optimizer steps (None = 600)
CPU_BATCH_SIZE = 16         # cpu-small fallback: windows per step (the config's own is 64)
EVAL_MAX_WINDOWS = 64       # None = the whole test split'''),
            code(setup()),
            md("""
            ## 1 · Which configuration runs here?
            """),
            code('''
            status = nu.paper_setup_status(EGOVIDEO_CHECKPOINT, GR00T_DIR)
            if status["use_paper"]:
                print(f"Paper configuration on {status['gpu']}.")
            else:
                print("Paper configuration NOT available: " + "; ".join(status["reasons"]) + ".")
                print(f"Running the cpu-small configuration on EgoSynth instead ({CPU_MAX_STEPS} steps).")'''),
            code('''
            from egghand_lib.training import TrainConfig

            if status["use_paper"]:
                config = nu.paper_train_config(EGOVIDEO_CHECKPOINT, GR00T_DIR, max_steps=PAPER_MAX_STEPS)
                if EGOEXO4D_PREP:
                    prep_dir, test_split = Path(EGOEXO4D_PREP), "egghand-val"
                else:  # the paper model on EgoSynth: the raw splits instead of the paper's episode lists
                    prep_dir, test_split = nu.egosynth_prepared(data_dir, SYNTH_PRESET, SEED), "test"
                    config = config.replace(train_split="train", eval_split="val")
            else:
                config = TrainConfig.named("cpu-small", max_steps=CPU_MAX_STEPS, batch_size=CPU_BATCH_SIZE,
                                           eval_split=None, save_every=0)
                prep_dir, test_split = nu.egosynth_prepared(data_dir, SYNTH_PRESET, SEED), "test"
            {k: v for k, v in config.to_dict().items() if k in ("name", "model_preset", "model_overrides", "lr",
                                                                "batch_size", "grad_accum_steps", "epochs", "max_steps",
                                                                "warmup_ratio", "train_split")}'''),
            md("""
            ## 2 · The paper-size model, without allocating it

            Built on PyTorch's *meta* device, the paper's decoder costs no memory, so even a laptop can print what the
            GPU run trains and what stays frozen. The EgoVideo encoder (frozen) is not included here.
            """),
            code('''
            from egghand_lib.models.egghand import build_decoder_on_meta

            print(build_decoder_on_meta("gr00t-n1.5").parameter_summary())'''),
            md("""
            ## 3 · Train

            One call; checkpoints (weights, optimizer, scheduler, RNG) are written to the run folder, and running the
            cell again resumes or, when finished, just loads the model. On several GPUs run the same configuration
            from a terminal with `accelerate launch -m egghand_lib.cli train --config paper --prep PREP --out RUN
            --model-set encoder_kwargs='{"checkpoint": "..."}' ...`.
            """),
            code('''
            run_dir = out_root / "02_finetune_gpu" / ("paper" if status["use_paper"] else f"cpu-small-{CPU_MAX_STEPS}")
            model, run_dir = nu.train_or_load(config, prep_dir, run_dir)
            print(model.parameter_summary())'''),
            code('''
            viz.training_curve_figure(nu.training_history(run_dir), title=f"{config.name}: training loss");'''),
            md("""
            ## 4 · Evaluate

            Both metric conventions are computed; the table shows the paper's (EggHand) convention, with the paper's
            EgoExo4D numbers for reference (they only compare with a paper-configuration run on EgoExo4D).
            """),
            code('''
            from egghand_lib.evaluation import evaluate

            results = evaluate(prep_dir, test_split, model, out_dir=run_dir / "eval", train_split=config.train_split,
                               max_windows=EVAL_MAX_WINDOWS, progress=False)
            display(Markdown(viz.metrics_table_markdown(nu.metrics_rows(results))))
            display(Markdown("The paper on EgoExo4D (Table 1), for reference:\\n\\n"
                             + viz.metrics_table_markdown(nu.PAPER_TABLE1, bold_best=False)))'''),
            code('''
            fig = viz.horizon_error_figure(nu.horizon_curves(results, "mpjpe"), ylabel="MPJPE (m)",
                                           title="hand-shape error per horizon")
            viz.save_figure(fig, run_dir / "eval" / "horizon_mpjpe.png");'''),
            code('''
            viz.per_task_bar_figure(nu.per_group_table(results, "ade"), metric="ADE (m)", title="per scenario");'''),
            md("""
            The trained model is in `run_dir / "model"` (`config.json`, `model.safetensors`, normalisation
            statistics): load it anywhere with `EggHandPolicy.from_pretrained(run_dir)` and use it in
            notebooks 03 and 04 through their `PRETRAINED` / model parameters.
            """),
        ],
    )


# ----------------------------------------------------------------------------------------------------
# 03 ablations
# ----------------------------------------------------------------------------------------------------

def ablations() -> nbformat.NotebookNode:
    return notebook(
        """
        # 03 · The paper's ablations (Tables 2-5)

        Which ingredients matter? The paper answers with four tables, reproduced here on any prepared dataset:

        - **Table 2**, losses: the model retrained with L_abs alone, plus the pairwise-distance term, plus the
          wrist-relative term, and all three;
        - **Table 3**, modalities: the trained model evaluated with its frames replaced by Gaussian noise, its prompt
          replaced by random task words, and both;
        - **Table 4**, egomotion and encoder: metrics on the top-10% egomotion windows vs all; EgoVideo vs
          InternVL3.5-1B (needs both encoders' weights);
        - **Table 5**, action-head initialisation: GR00T-pretrained vs random (needs the GR00T weights).

        Evaluation-time corruptions reuse the trained model; loss and initialisation variants are retrained, each in
        its own resumable run folder.
        """,
        [
            md("""
            ## Parameters

            Tiny defaults retrain each variant for a few steps, which shows the machinery, not the effects. For
            meaningful numbers use `SYNTH_PRESET = "bench"`, `TRAIN_CONFIG = "cpu-small"`, `MAX_STEPS = None` and
            `MAX_WINDOWS = None` (roughly an hour on 2 cores: six cpu-small trainings of about 10 minutes each), or
            pass your trained run as `MODEL`.
            """),
            params(DATA_PARAMS + '''
TRAIN_CONFIG = "tiny"      # config of the base model and of every retrained variant
MAX_STEPS = 5              # optimizer steps per training run; None = the config's own
MODEL = None               # a trained run folder to ablate instead of training a base model here
PREP_DIR = None            # your prepared folder (e.g. EgoExo4D); None = EgoSynth below
TEST_SPLIT, TRAIN_SPLIT = "test", "train"  # EgoExo4D with the paper's lists: "egghand-val", "egghand-train"
WHICH = ("modality", "egomotion", "loss", "head_init", "encoder")
MAX_WINDOWS = 32           # evaluated test windows; None = all
EGOVIDEO_CHECKPOINT = None # Table 4 encoder swap needs both of these ...
INTERNVL_DIR = None        # ... (a local InternVL3_5-1B-HF folder)
GR00T_DIR = None           # Table 5 pretrained head'''),
            code(setup()),
            code('''
            from egghand_lib.ablations import run_ablations
            from egghand_lib.training import TrainConfig

            prep_dir = Path(PREP_DIR) if PREP_DIR else nu.egosynth_prepared(data_dir, preset=SYNTH_PRESET, seed=SEED)
            tag = f"{Path(PREP_DIR).name if PREP_DIR else f'{SYNTH_PRESET}-seed{SEED}'}-{TRAIN_CONFIG}-{MAX_STEPS}"
            train_config = TrainConfig.named(TRAIN_CONFIG, max_steps=MAX_STEPS, eval_split=None,
                                             train_split=TRAIN_SPLIT)
            if MODEL is None:
                model, base_run = nu.train_or_load(train_config, prep_dir, out_root / "models" / tag)
            else:
                base_run = Path(MODEL)
            # Named after the config too: a re-run with other settings never meets an older run's folders.
            ablation_dir = out_root / "03_ablations" / f"{tag}-{train_config.digest()}"'''),
            md("""
            ## Run everything

            One call runs the selected ablations and writes `ablations.md`, `.csv` and `.json` next to the variants'
            run folders. Re-running the cell reuses finished runs.
            """),
            code('''
            res = run_ablations(prep_dir, ablation_dir, model=base_run, which=WHICH, train_config=train_config,
                                split=TEST_SPLIT, train_split=TRAIN_SPLIT, max_windows=MAX_WINDOWS,
                                egovideo_path=EGOVIDEO_CHECKPOINT, internvl_path=INTERNVL_DIR, gr00t_path=GR00T_DIR,
                                progress=False)
            print(f"{len(res['rows'])} rows, {res['num_windows']} {res['split']} windows; files in {ablation_dir}")'''),
            md("""
            ## Table 2 · Loss terms

            The paper finds each auxiliary term helps on top of L_abs: encoding the relations between joints gives
            supervision that absolute coordinates alone miss.
            """),
            code('''
            rows, extra = nu.ablation_table(res, "2 loss")
            display(Markdown(viz.metrics_table_markdown(rows, extra=extra, first_header="loss")))
            if rows:
                viz.ablation_bar_figure(rows, title="Table 2: loss terms")'''),
            md("""
            ## Table 3 · Modality corruption

            Noisy vision removes where the objects are; dummy language removes what the person intends. If the model
            uses them, both corruptions hurt and together they hurt most (paper: ADE 0.271 → 0.287 / 0.278 / 0.311).
            On EgoSynth, cpu-small trained by `egghand demo` (600 CPU steps) uses the prompt (dummy language: +10%
            ADE) but not the frames (noisy vision: no change; see BENCHMARKS.md): its small video CNN, trained from
            scratch, has not learnt where the objects are, and on EgoSynth that is worth little:
            `bench/predictability.py` finds that even the true object positions improve a predictor of past motion
            by under 3%. The tiny defaults here are too short to show either.
            """),
            code('''
            rows, extra = nu.ablation_table(res, "3 modality")
            display(Markdown(viz.metrics_table_markdown(rows, extra=extra, first_header="input")))
            if rows:
                viz.ablation_bar_figure(rows, title="Table 3: modality corruption")'''),
            md("""
            ## Table 4 · Egomotion and encoder

            Static, CVM and the model on the top-10% egomotion windows and on all windows, then the encoder swap
            (reported as *not run* unless both encoders' weights are given).
            """),
            code('''
            rows, extra = nu.ablation_table(res, "4 egomotion")
            display(Markdown(viz.metrics_table_markdown(rows, extra=extra, first_header="method / subset")))
            enc_rows, enc_extra = nu.ablation_table(res, "4 encoder")
            display(Markdown(viz.metrics_table_markdown(enc_rows, extra=enc_extra, first_header="encoder")))'''),
            code('''
            if rows:
                viz.ablation_bar_figure(rows, metrics=("ade", "mpjpe"), title="Table 4: top egomotion vs all")'''),
            md("""
            ## Table 5 · Action-head initialisation
            """),
            code('''
            rows, extra = nu.ablation_table(res, "5 head init")
            display(Markdown(viz.metrics_table_markdown(rows, extra=extra, first_header="action head")))'''),
            md("""
            ## The paper's numbers (EgoExo4D, metres)

            For comparison with a paper-configuration run on EgoExo4D (not with the tiny defaults above).
            """),
            code('''
            for title, table in nu.PAPER_ABLATIONS.items():
                display(Markdown(f"**{title}**\\n\\n" + viz.metrics_table_markdown(table, bold_best=False)))'''),
        ],
    )


# ----------------------------------------------------------------------------------------------------
# 04 visualization
# ----------------------------------------------------------------------------------------------------

def visualization() -> nbformat.NotebookNode:
    return notebook(
        """
        # 04 · Looking at forecasts

        Numbers say how far off a forecast is; pictures say *how*. This notebook takes one trained model and
        looks at its forecasts in every way the toolkit offers:

        1. the animated 3D scene with the head camera,
        2. joints projected onto the egocentric video frames,
        3. language steering: the same window forecast under different prompts,
        4. sampled hypotheses from the flow-matching decoder,
        5. hand meshes exported to GLB,
        6. an interactive explorer (pick a window, edit the prompt, forecast again).
        """,
        [
            md("""
            ## Parameters

            The tiny defaults train a model that has barely learnt anything; set `PRETRAINED` to a real run (for
            example the `cpu-small` model of `egghand demo`) to see meaningful forecasts.
            """),
            params(DATA_PARAMS + '''
TRAIN_CONFIG = "tiny"
MAX_STEPS = 10
PRETRAINED = None        # a finished run or saved-model folder
NUM_HYPOTHESES = 8       # sampled forecasts per window
EXTRA_PROMPTS = ("Wipe the table with the sponge.", "Play a scale on the keyboard.")'''),
            code(setup(windows=True)),
            code('''
            prep_dir = nu.egosynth_prepared(data_dir, preset=SYNTH_PRESET, seed=SEED)
            test_ds = WindowDataset(prep_dir, "test")
            if PRETRAINED:
                from egghand_lib.models.egghand import EggHandPolicy

                model = EggHandPolicy.from_pretrained(PRETRAINED).eval()
            else:
                run_dir = out_root / "models" / f"{SYNTH_PRESET}-seed{SEED}-{TRAIN_CONFIG}-{MAX_STEPS}"
                model, _ = nu.train_or_load(TRAIN_CONFIG, prep_dir, run_dir, max_steps=MAX_STEPS, eval_split=None)
            picks = nu.pick_windows(test_ds, 6)
            i = picks[len(picks) // 2]
            window, K = test_ds[i], nu.window_intrinsics(test_ds, i)
            forecast = nu.forecast_fn(model)(window)
            print(f"window {i}: {window['task']!r}")'''),
            md("""
            ## 1 · The 3D scene

            Observed (blue), ground truth (green), forecast (red), head camera (grey); the slider walks through the
            window. Switch `frame="world"` to see it where it was recorded.
            """),
            code('''
            viz.window_figure(window, forecast, intrinsics=K)'''),
            md("""
            ## 2 · On the video

            The observed joints projected with each frame's camera onto the 4 frames the model sees; on the last
            frame also the ground-truth and forecast hands one second later, as seen from the current camera.
            Invalid joints and joints outside the image are not drawn.
            """),
            code('''
            fig = viz.window_overlay_figure(window, K, forecast)
            viz.save_figure(fig, out_root / "04_visualization" / "overlay.png");'''),
            md("""
            ## 3 · Language steering

            Everything but the prompt stays fixed. If the model listens to language, the forecast moves with the
            prompt. The table lists how far each forecast's wrists end up from the one under the window's own prompt,
            and each forecast's error against what really happened.
            """),
            code('''
            prompts = list(dict.fromkeys([window["task"], *sorted(set(test_ds.arrays()["task"])), *EXTRA_PROMPTS]))
            by_prompt = nu.prompt_forecasts(model, window, prompts)
            display(Markdown(nu.steering_markdown(by_prompt, window)))
            viz.prompt_comparison_figure(window, by_prompt, title="one window, several prompts")'''),
            md("""
            ## 4 · Sampled hypotheses

            The decoder integrates a flow from a noise sample; different noise seeds give different plausible
            futures (orange wrist paths). The deterministic forecast uses one fixed seed; best-of-K picks, per window,
            the sample closest to the truth.
            """),
            code('''
            samples = nu.sample_window(model, window, NUM_HYPOTHESES, seed=1)
            viz.window_figure(window, forecast, hypotheses=samples, intrinsics=K, title="hypotheses")'''),
            code('''
            from egghand_lib.metrics import best_of_k, forecast_metrics

            gt, valid = window["future_joints"][None].numpy(), window["future_valid"][None].numpy()
            display(Markdown(viz.metrics_table_markdown({
                "deterministic": forecast_metrics(forecast[None], gt, valid),
                f"best of {NUM_HYPOTHESES}": best_of_k(samples[None], gt, valid),
            })))'''),
            md("""
            ## 5 · Hand meshes

            Capsule bones and sphere joints (missing joints left out) for the final target frame, written as one
            binary glTF scene: open it in any glTF viewer, Blender, or `trimesh.load(path).show()`.
            """),
            code('''
            meshes = {
                "ground_truth": viz.hand_mesh(window["future_joints"][-1], window["future_valid"][-1],
                                              color=viz.COLORS["ground truth"]),
                "forecast": viz.hand_mesh(forecast[-1], None, color=viz.COLORS["forecast"]),
            }
            glb = viz.export_glb(meshes, out_root / "04_visualization" / "final_frame.glb")
            {name: len(m.vertices) for name, m in meshes.items()} | {"file": glb}'''),
            md("""
            ## 6 · Explore

            Pick a window, edit the prompt and press **Forecast**. (In a static render of this notebook the panel
            is inert; run it in Jupyter or Colab.)
            """),
            code('''
            explorer = viz.forecast_explorer(lambda k: test_ds[picks[k]], len(picks), nu.forecast_fn(model))
            explorer.button.click()  # draw the first window
            explorer'''),
        ],
    )


NOTEBOOKS = {
    "00_quickstart.ipynb": quickstart,
    "01_canonicalization.ipynb": canonicalization,
    "02_finetune_gpu.ipynb": finetune_gpu,
    "03_ablations.ipynb": ablations,
    "04_visualization.ipynb": visualization,
}


def main() -> None:
    for name, build in NOTEBOOKS.items():
        nb = build()
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name} ({len(nb.cells)} cells)")


if __name__ == "__main__":
    main()
