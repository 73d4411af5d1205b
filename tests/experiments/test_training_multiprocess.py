"""Two training processes (DDP, gloo on CPU, `accelerate launch`) train the weights one process trains with the
same global batch: the same windows in every step and the mean of the same micro-batch losses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import torch
from safetensors.torch import load_file

from egghand_lib.data.windows import WindowDataset
from egghand_lib.training import build_model, set_seed, train
from tests.fixtures.tiny_egosynth import tiny_run_config

STEPS = 15  # the 92 training windows hold 11 steps of 8: the runs cross an epoch boundary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_the_weights_of_one_with_the_same_global_batch(tiny_egosynth, tmp_path):
    # One process: micro-batches of 4, two accumulated per step (global batch 8).
    cfg = tiny_run_config(max_steps=STEPS, batch_size=4, grad_accum_steps=2)
    one = train(cfg, tmp_path / "one", prep_dir=tiny_egosynth.prep, progress=False)
    assert one.finished
    # Two processes: 4 windows each per step, no accumulation (global batch 8). `--multi_gpu` starts them with
    # torchrun; the toolkit's Accelerator runs them on the CPU with gloo when there is no GPU (`--cpu
    # --num_processes 2` would start one process: accelerate needs an MPI host file for several CPU processes).
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()),
           "-m", "egghand_lib.cli", "train", "--prep", str(tiny_egosynth.prep), "--out", str(tmp_path / "two"),
           "--config", "tiny", "--steps", str(STEPS), "--batch-size", "4", "--grad-accum", "1",
           "--set", "eval_split=null", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == STEPS
    one_w = load_file(str(tmp_path / "one" / "model" / "model.safetensors"))
    two_w = load_file(str(tmp_path / "two" / "model" / "model.safetensors"))
    assert one_w.keys() == two_w.keys()
    worst = max(float((one_w[k].double() - two_w[k].double()).abs().max()) for k in one_w)
    assert worst <= 1e-5, worst
    # ... and both moved away from the initial weights (not a comparison of two untouched initialisations).
    set_seed(cfg.seed)
    init = build_model(cfg, stats=WindowDataset(tiny_egosynth.prep, "train").stats).state_dict()
    moved = max(float((one_w[k].double() - init[k].double()).abs().max()) for k in one_w if k in init)
    assert moved > 1e-2, moved
    assert torch.isfinite(torch.cat([v.flatten().double() for v in one_w.values()])).all()
