"""Training: a plain PyTorch loop on top of accelerate (docs/conventions.md, "Training").

One optimizer step = ``grad_accum_steps`` micro-batches of ``batch_size`` windows per process.
Accelerate picks the device, wraps the forward pass in bf16 autocast on CUDA (fp32 on CPU) and skips
gradient synchronisation inside an accumulation window. AdamW + cosine decay with linear warm-up
(``warmup_ratio`` of the optimizer steps), gradient clipping, periodic evaluation, a CSV metric log.

Checkpoints (``out_dir/checkpoints/step_XXXXXX/``, each written atomically) hold the trainable weights
and buffers (safetensors), the optimizer and scheduler state, every RNG state and the step. The data
order is a pure function of (seed, epoch), so a resumed run sees exactly the batches an uninterrupted
run would: training N steps straight and N/2 + resume give identical weights on CPU. Ctrl-C saves a
checkpoint at the last completed optimizer step before stopping.

Several processes (DDP, gloo on CPU): each takes its slice of every micro-batch, so N processes with
accumulation k train, step by step, the weights one process trains with accumulation N * k (the same
windows, the mean of the same micro-batch losses). Launch them with ``accelerate launch --multi_gpu
--num_processes N -m egghand_lib.cli train ...`` (on a CPU-only machine too: the processes then use gloo);
``accelerate launch --cpu --num_processes N`` starts ONE process unless given an MPI host file (accelerate
1.x). Only the main process writes to the run folder.

    from egghand_lib.training import TrainConfig, train
    result = train(TrainConfig.named("cpu-small"), "runs/cpu-small", prep_dir="data/prepared")
    result.model.forecast(batch)
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import pickle
import random
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from egghand_lib.batch import batch_to, collate_windows
from egghand_lib.data.feature_cache import (
    attach_feature_cache,
    build_feature_cache,
    dataset_fingerprint,
    encoder_identity,
)
from egghand_lib.data.sources import open_windows
from egghand_lib.data.windows import check_edges
from egghand_lib.io import (
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    claim_output_folder,
    clean_partials,
    write_settings,
)
from egghand_lib.metrics import forecast_metrics
from egghand_lib.models.egghand import EggHandConfig, EggHandPolicy
from egghand_lib.models.encoders import build_encoder

# ----------------------------------------------------------------------------------------------
# Configuration


@dataclass
class TrainConfig:
    """Everything that defines a training run. Named presets: ``TrainConfig.named(name)``."""

    name: str = "custom"
    # model: an EggHandConfig preset plus field overrides (e.g. {"loss_weights": (0.6, 0.0, 0.0)})
    model_preset: str = "cpu-small"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    protocol: str = "future"
    edges: str = "mask"  # episode edges of the windows: "mask" | "pad" (official EggHand) | "complete" (EgoH4)
    train_split: str = "train"
    eval_split: str | None = "val"
    # optimisation (official code: AdamW lr 3e-5, wd 1e-7, batch 8 x 8 accumulation, 10 epochs)
    lr: float = 3e-5
    weight_decay: float = 1e-7
    adam_betas: tuple[float, float] = (0.9, 0.999)
    warmup_ratio: float = 0.05
    batch_size: int = 8  # windows per micro-batch and process
    grad_accum_steps: int = 8  # effective batch = batch_size * grad_accum_steps * processes
    epochs: float = 10.0
    max_steps: int | None = None  # optimizer steps; when set it overrides epochs
    max_grad_norm: float | None = 1.0
    seed: int = 42
    mixed_precision: str = "auto"  # "auto" (bf16 on CUDA, fp32 on CPU) | "no" | "bf16" | "fp16"
    allow_tf32: bool = True
    # bookkeeping (in optimizer steps; 0 = only at the end)
    log_every: int = 10
    eval_every: int = 0
    eval_max_windows: int | None = 512
    save_every: int = 0
    keep_checkpoints: int = 2
    num_workers: int = 0
    # Folder of frozen-encoder feature caches, one sub-folder per split (`egghand cache`): training then
    # reads the encoder's outputs instead of running it, and the model is built with encoder="cached".
    # "auto": the model's frozen encoder computes them once into out_dir/features/{split} before the first
    # step, and the saved model carries that encoder again (it forecasts from frames and prompts).
    feature_cache: str | None = None
    # Where feature_cache="auto" keeps its caches: None = out_dir/features; a folder shared by several runs lets
    # runs on the same prepared data with the same frozen encoder encode it once (ablation variants, seeds):
    # <folder>/<encoder>-<key>/{split}, the key naming the encoder's weights and the data.
    feature_cache_dir: str | None = None

    # Fields that do not change the trained weights: they may differ between a run and its resume.
    _BOOKKEEPING = ("name", "log_every", "eval_every", "eval_max_windows", "save_every", "keep_checkpoints",
                    "num_workers", "eval_split", "feature_cache_dir")

    @classmethod
    def named(cls, name: str, **overrides: Any) -> TrainConfig:
        """A named configuration ("paper", "cpu-small", "tiny") with optional field overrides."""
        if name not in TRAIN_CONFIGS:
            raise ValueError(f"config: unknown name {name!r}; expected one of {sorted(TRAIN_CONFIGS)}")
        cfg = dataclasses.replace(TRAIN_CONFIGS[name], name=name)
        return cfg.replace(**overrides)

    def replace(self, **overrides: Any) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"config: unknown field(s) {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["adam_betas"] = list(self.adam_betas)
        return d

    def weight_fields(self) -> dict[str, Any]:
        """The fields that change the trained weights (not the bookkeeping ones), as stored in
        train_config.json (tuples as lists): what a resumed or reused run must agree on."""
        return {k: v for k, v in json.loads(json.dumps(self.to_dict())).items() if k not in self._BOOKKEEPING}

    def digest(self) -> str:
        """8 hex digits identifying ``weight_fields()``: a folder name for runs of this exact config."""
        return hashlib.sha256(json.dumps(self.weight_fields(), sort_keys=True).encode()).hexdigest()[:8]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        if "adam_betas" in d:
            d["adam_betas"] = tuple(d["adam_betas"])
        return cls().replace(**d)

    def validate(self) -> None:
        positive = ("lr", "batch_size", "grad_accum_steps")
        for k in positive:
            if not getattr(self, k) > 0:
                raise ValueError(f"config.{k}: must be > 0, got {getattr(self, k)!r}")
        if self.max_steps is None and not self.epochs > 0:
            raise ValueError(f"config.epochs: must be > 0 when max_steps is unset, got {self.epochs!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"config.max_steps: must be >= 1, got {self.max_steps!r}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"config.warmup_ratio: must be in [0, 1), got {self.warmup_ratio!r}")
        check_edges(self.edges)
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ValueError(f"config.mixed_precision: expected auto/no/bf16/fp16, got {self.mixed_precision!r}")


# The tiny preset's 16 video tokens: 4 frames x 2 x 2 grid cells of a small CNN on 32 px frames.
TINY_ENCODER = {"image_size": 32, "grid": 2, "video_width": 32, "stem_channels": 8, "mid_channels": 16}

TRAIN_CONFIGS: dict[str, TrainConfig] = {
    # The paper (GPU): EgoVideo + GR00T N1.5 head, effective batch 64, 10 epochs on the paper's split.
    "paper": TrainConfig(
        model_preset="gr00t-n1.5", train_split="egghand-train", eval_split="egghand-val",
        lr=3e-5, weight_decay=1e-7, warmup_ratio=0.05, batch_size=8, grad_accum_steps=8, epochs=10.0,
        log_every=20, eval_every=1000, save_every=1000, eval_max_windows=2048, num_workers=4,
    ),
    # The official EggHand code exactly (docs/conventions.md, "Differences"): its windows (targets 0..+9,
    # edge frames padded and counted), its loss on normalised coordinates, its state input and constant-
    # dimension normalisation, 1% warm-up.
    "egghand-code": TrainConfig(
        model_preset="gr00t-n1.5", protocol="egghand-code", edges="pad", train_split="egghand-train",
        eval_split="egghand-val", lr=3e-5, weight_decay=1e-7, warmup_ratio=0.01, batch_size=8, grad_accum_steps=8,
        epochs=10.0, log_every=20, eval_every=1000, save_every=1000, eval_max_windows=2048, num_workers=4,
        model_overrides={"loss_variant": "egghand-code", "loss_space": "normalised", "state_input": "egghand-code",
                         "norm_constant": "minus-one"},
    ),
    # EgoSynth bench on 2 CPU cores in a few minutes: the frozen encoder's features cached once per run, then a
    # decoder-only fine-tune of the pretrained head (small decoder, large lr, one process).
    "cpu-small": TrainConfig(
        model_preset="cpu-small", lr=1e-3, weight_decay=1e-4, warmup_ratio=0.05, batch_size=64,
        grad_accum_steps=1, max_steps=600, log_every=20, eval_every=200, save_every=100,
        eval_max_windows=256, feature_cache="auto",
    ),
    # Tests and --quick: seconds.
    "tiny": TrainConfig(
        model_preset="tiny", model_overrides={"encoder_kwargs": TINY_ENCODER}, lr=3e-3, weight_decay=0.0,
        warmup_ratio=0.05, batch_size=8, grad_accum_steps=1, max_steps=30, log_every=5, eval_every=0,
        save_every=0, eval_max_windows=64,
    ),
}


@dataclass
class TrainResult:
    """What ``train`` returns. ``model`` is the trained module (unwrapped, on the training device)."""

    model: nn.Module
    out_dir: Path
    step: int
    total_steps: int
    finished: bool
    model_dir: Path | None
    history: list[dict[str, Any]]
    eval_metrics: dict[str, float]


# ----------------------------------------------------------------------------------------------
# Seeds and RNG state


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG state as tensors and plain numbers (loadable with ``torch.load(weights_only=True)``)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_key": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_has_gauss": int(np_state[3]),
        "numpy_cached_gaussian": float(np_state[4]),
        "python_version": int(py_state[0]),
        "python_state": torch.tensor(py_state[1], dtype=torch.int64),
        "python_gauss": py_state[2],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_key"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_cached_gaussian"]))
    random.setstate((state["python_version"], tuple(int(x) for x in state["python_state"].tolist()),
                     state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------
# Schedule


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float):
    """Cosine decay to 0 after a linear warm-up over ``ceil(warmup_ratio * total_steps)`` steps."""
    warmup = math.ceil(warmup_ratio * total_steps)
    return get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)


# ----------------------------------------------------------------------------------------------
# Data order: a pure function of (seed, epoch), so resuming at any optimizer step is exact.


def epoch_permutation(num_items: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_items, generator=g)


def micro_batch_indices(num_items: int, batch_size: int, seed: int, start: int = 0, rank: int = 0,
                        world: int = 1, accum: int = 1) -> Iterator[list[int]]:
    """Window indices of micro-batch ``start``, ``start + 1``, ... (endless, reshuffled every epoch).

    Every micro-batch takes ``batch_size * world`` windows of the epoch's permutation and process ``rank``
    gets its slice. An epoch holds whole optimizer steps of ``accum`` micro-batches (the windows left over
    are dropped, so every step weighs the same and never mixes two epochs): one process accumulating
    ``accum = k`` micro-batches sees, step by step, exactly the windows ``k`` processes see together.
    """
    per_micro = batch_size * world
    per_epoch = num_items // (per_micro * accum) * accum
    if per_epoch < 1:
        raise ValueError(f"dataset: {num_items} windows is fewer than one batch of {per_micro * accum} "
                         f"({batch_size} per micro-batch x {accum} accumulated x {world} processes)")
    m = start
    while True:
        epoch, pos = divmod(m, per_epoch)
        perm = epoch_permutation(num_items, seed, epoch)
        for p in range(pos, per_epoch):
            lo = p * per_micro + rank * batch_size
            yield perm[lo:lo + batch_size].tolist()
        m = (epoch + 1) * per_epoch


def _micro_batches(dataset, indices: Iterator[list[int]], collate, num_workers: int) -> Iterator[dict]:
    if num_workers <= 0:
        for idx in indices:
            yield collate([dataset[i] for i in idx])
    else:
        # A DataLoader over the lazily produced index lists; order stays that of ``indices``.
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=_IterSampler(indices), collate_fn=collate,
                                             num_workers=num_workers, persistent_workers=False)
        yield from loader


class _IterSampler:
    def __init__(self, it: Iterator[list[int]]):
        self.it = it

    def __iter__(self):
        return self.it


def steps_per_epoch(num_items: int, config: TrainConfig, world: int = 1) -> int:
    """Optimizer steps per epoch (an epoch holds whole steps; see ``micro_batch_indices``)."""
    return num_items // (config.batch_size * world * config.grad_accum_steps)


def total_optimizer_steps(num_items: int, config: TrainConfig, world: int = 1) -> int:
    if config.max_steps is not None:
        return int(config.max_steps)
    return max(1, math.ceil(config.epochs * steps_per_epoch(num_items, config, world)))


# ----------------------------------------------------------------------------------------------
# Checkpoints


CHECKPOINT_RE = re.compile(r"^step_(\d{6,})$")


def _trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters and all persistent buffers: what changes during training."""
    params = dict(model.named_parameters())
    keep = {}
    for k, v in model.state_dict().items():
        if k not in params or params[k].requires_grad:
            keep[k] = v.detach().cpu().contiguous().clone()
    return keep


def save_checkpoint(ckpt_dir: Path, model: nn.Module, optimizer, scheduler, step: int, rng: dict[str, Any],
                    extra: dict[str, Any] | None = None) -> Path:
    """Write one checkpoint folder atomically (a half-written one never looks complete)."""
    with atomic_dir(ckpt_dir, overwrite=True) as tmp:
        save_file(_trainable_state(model), str(tmp / "model.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(rng, tmp / "rng.pt")
        atomic_write_json(tmp / "state.json", {"step": step, **(extra or {})})
    return ckpt_dir


def load_checkpoint(ckpt_dir: Path, model: nn.Module, optimizer=None, scheduler=None) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (and optimizer / scheduler); returns state.json plus ``rng``."""
    ckpt_dir = Path(ckpt_dir)
    for name in ("model.safetensors", "state.json"):
        if not (ckpt_dir / name).is_file():
            raise FileNotFoundError(f"{ckpt_dir / name}: missing; not a complete checkpoint")
    try:
        weights = load_file(str(ckpt_dir / "model.safetensors"))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{ckpt_dir / 'model.safetensors'}: not a readable safetensors file ({e})") from None
    own = model.state_dict()
    bad = [k for k in weights if k not in own or own[k].shape != weights[k].shape]
    if bad:
        raise ValueError(f"{ckpt_dir / 'model.safetensors'}: {len(bad)} tensor(s) do not fit the model, e.g. {bad[:3]}")
    nonfinite = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if nonfinite:
        raise ValueError(f"{ckpt_dir / 'model.safetensors'}: NaN or inf in {len(nonfinite)} tensor(s), e.g. "
                         f"{nonfinite[:3]}; resume from an earlier checkpoint or start over (--no-resume)")
    state = _read_json_object(ckpt_dir / "state.json")
    if not isinstance(state.get("step"), int) or state["step"] < 0:
        raise ValueError(f"{ckpt_dir / 'state.json'}: no valid 'step' ({state.get('step')!r})")
    try:
        if optimizer is not None:
            optimizer.load_state_dict(_torch_load(ckpt_dir / "optimizer.pt"))
        if scheduler is not None:
            scheduler.load_state_dict(_torch_load(ckpt_dir / "scheduler.pt"))
        state["rng"] = _torch_load(ckpt_dir / "rng.pt")
        model.load_state_dict(weights, strict=False)
    except (KeyError, TypeError, RuntimeError) as e:  # a state of another optimizer / model
        raise ValueError(f"{ckpt_dir}: checkpoint does not fit this run ({type(e).__name__}: {e})") from None
    return state


def _torch_load(path: Path) -> Any:
    """torch.load(weights_only=True) with errors naming the file (missing, truncated, not a torch file)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; not a complete checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, ValueError) as e:
        raise ValueError(f"{path}: not a readable torch file ({type(e).__name__}: {str(e).splitlines()[0]})") from None


def _read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, errors naming the file."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := CHECKPOINT_RE.match(p.name))
             and (p / "state.json").is_file()]
    return [p for _, p in sorted(found)]


def _prune_checkpoints(out_dir: Path, keep: int) -> None:
    ckpts = list_checkpoints(out_dir)
    for p in ckpts[: max(0, len(ckpts) - max(1, keep))]:
        shutil.rmtree(p, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# CSV metric log


LOG_COLUMNS = ("step", "epoch", "lr", "loss", "loss_abs", "loss_rel", "loss_pair", "grad_norm", "val_loss",
               "val_ade", "val_fde", "val_mpjpe", "val_mpjpe_f", "elapsed_s")


def _read_log(path: Path, up_to_step: int) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return [r for r in rows if int(r["step"]) <= up_to_step]
    except (KeyError, TypeError, ValueError, csv.Error) as e:  # ValueError: also UnicodeDecodeError
        raise ValueError(f"{path}: not a metrics log of this toolkit ({type(e).__name__}: {e}); "
                         "delete it or start over (--no-resume)") from None


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    # the known columns first, then any other part a model reports (e.g. a pretraining objective's terms)
    extra = sorted({k for r in rows for k in r} - set(LOG_COLUMNS))
    columns = [*LOG_COLUMNS, *extra]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k, "")) for k in columns})
    atomic_write_text(path, buf.getvalue())


def _fmt(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v


# ----------------------------------------------------------------------------------------------
# Model construction and periodic evaluation


def model_config(config: TrainConfig) -> EggHandConfig:
    """The EggHandConfig of a training config: its model preset with its overrides."""
    overrides = dict(config.model_overrides)
    overrides.setdefault("protocol", config.protocol)
    known = {f.name for f in dataclasses.fields(EggHandConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"config.model_overrides: unknown EggHandConfig field(s) {unknown}")
    return EggHandConfig.preset(config.model_preset, **overrides)


def build_model(config: TrainConfig, stats=None) -> nn.Module:
    """An EggHandPolicy from the config's model preset and overrides."""
    return EggHandPolicy(model_config(config), stats=stats)


def _auto_feature_cache(config: TrainConfig, out_dir: Path, datasets: dict[str, Any],
                        progress: bool) -> tuple[nn.Module, Path]:
    """``feature_cache="auto"``: the model's frozen encoder, and a cache of its features for each split's windows
    in ``out_dir/features/{split}``, or ``config.feature_cache_dir/<encoder>-<key>/{split}`` (built once,
    resumable; a cache of other data or weights is refused)."""
    mcfg = model_config(config)
    encoder = build_encoder(mcfg.encoder, **mcfg.encoder_kwargs)
    if not getattr(encoder, "frozen", False):
        raise ValueError(f"feature_cache='auto': the model's encoder {mcfg.encoder!r} is trained, not frozen; only a "
                         "frozen encoder's features can be cached")
    root = out_dir / AUTO_FEATURES_DIR
    if config.feature_cache_dir:
        # the key: the encoder's identity (its weights) and the data's (the train split's fingerprint without
        # its split and size), so runs on other data or with other weights never share a folder
        data = {k: v for k, v in dataset_fingerprint(datasets[config.train_split]).items()
                if k not in ("split", "num_windows")}
        ident = json.dumps([encoder_identity(encoder), data], sort_keys=True).encode()
        root = Path(config.feature_cache_dir) / f"{mcfg.encoder}-{hashlib.sha256(ident).hexdigest()[:10]}"
    for split, ds in datasets.items():
        if ds is not None:
            build_feature_cache(encoder, ds, root / split, progress=progress)
    return encoder, root


def eval_indices(num_items: int, max_windows: int | None) -> list[int]:
    """Evenly spaced window indices (all when ``max_windows`` is None or large enough)."""
    if max_windows is None or num_items <= max_windows:
        return list(range(num_items))
    return np.linspace(0, num_items - 1, max_windows).round().astype(int).tolist()


@torch.no_grad()
def evaluate_during_training(model: nn.Module, dataset, indices: list[int], batch_size: int, device,
                             collate=collate_windows) -> dict[str, float]:
    """Validation loss (and, for forecasting models, egghand-convention metrics) on ``indices``, and the batch
    means of any scalar outputs the model names in ``validation_figures`` (as ``val_{name}``).

    Runs under ``fork_rng`` so it never changes the training RNG stream.
    """
    was_training = model.training
    model.eval()
    losses, preds, gts, valids = [], [], [], []
    figures = {k: [] for k in getattr(model, "validation_figures", ())}  # scalar parts a model asks to validate
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for lo in range(0, len(indices), batch_size):
            batch = batch_to(collate([dataset[i] for i in indices[lo:lo + batch_size]]), device)
            out = model(batch)
            n = len(indices[lo:lo + batch_size])
            losses.append(float(out["loss"]) * n)
            for k in figures:
                figures[k].append(float(out[k]) * n)
            if "pred" in out or hasattr(model, "forecast"):
                # in eval mode forward's "pred" is the deterministic forecast: no second pass needed
                preds.append((out["pred"] if "pred" in out else model.forecast(batch)).float().cpu())
                gts.append(batch["future_joints"].cpu())
                valids.append(batch["future_valid"].cpu())
    model.train(was_training)
    metrics = {"val_loss": sum(losses) / max(1, len(indices))}
    metrics.update({f"val_{k}": sum(v) / max(1, len(indices)) for k, v in figures.items()})
    if preds:
        m = forecast_metrics(torch.cat(preds), torch.cat(gts), torch.cat(valids), convention="egghand")
        metrics.update({f"val_{k}": float(v) for k, v in m.items() if k in ("ade", "fde", "mpjpe", "mpjpe_f")})
    return metrics


def save_model(model: nn.Module, out: Path) -> Path:
    """The final model: ``save_pretrained`` when the model has it, else its state dict as safetensors."""
    with atomic_dir(out, overwrite=True) as tmp:
        if hasattr(model, "save_pretrained"):
            model.save_pretrained(tmp)
        else:
            save_file({k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()},
                      str(tmp / "model.safetensors"))
    return out


# ----------------------------------------------------------------------------------------------
# The loop


def _accelerator(config: TrainConfig):
    cuda = torch.cuda.is_available()
    mp = config.mixed_precision
    if mp == "auto":
        mp = "bf16" if cuda and torch.cuda.is_bf16_supported() else "no"
    if cuda and config.allow_tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    # Several processes: parameters outside this config's loss (e.g. the flow-matching input projection when
    # flow_loss_weight is 0) get no gradient, and DDP averages a bucket's gradients only once every parameter
    # in it has one, so it must look for the unused ones (else gradients stay per-process, silently).
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    return Accelerator(mixed_precision=mp, gradient_accumulation_steps=config.grad_accum_steps, cpu=not cuda,
                       kwargs_handlers=[ddp])


RUN_SETTINGS_NAME = "settings.json"  # what defines the run's weights: config fields + the training data
AUTO_FEATURES_DIR = "features"  # feature_cache="auto": the frozen encoder's features, one folder per split


def training_data_identity(dataset: Any) -> dict[str, Any]:
    """The identity of the training windows recorded with a run (the prepared data's manifest hash, split,
    protocol, number of windows); for an in-memory dataset without one, its number of windows."""
    try:
        return dataset_fingerprint(dataset)
    except ValueError:
        return {"source": "in-memory", "num_windows": len(dataset)}


def _clear_run(out_dir: Path) -> None:
    """Remove a run's outputs (start over in the same folder)."""
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    shutil.rmtree(out_dir / "model", ignore_errors=True)
    for stale in ("metrics.csv", "summary.json"):
        (out_dir / stale).unlink(missing_ok=True)


def _finished_result(out_dir: Path) -> TrainResult | None:
    """The TrainResult of a finished run in ``out_dir`` (its saved model), or None if it is not finished."""
    summary_path, model_dir = out_dir / "summary.json", out_dir / "model"
    if not summary_path.is_file() or not (model_dir / "config.json").is_file():
        return None
    summary = _read_json_object(summary_path)
    steps, total = summary.get("steps"), summary.get("total_steps")
    if not isinstance(steps, int) or not isinstance(total, int):
        raise ValueError(f"{summary_path}: no integer 'steps' / 'total_steps'; delete it to resume the run")
    if steps < total:
        return None
    model = EggHandPolicy.from_pretrained(model_dir)
    return TrainResult(model, out_dir, int(summary["steps"]), int(summary["total_steps"]), True, model_dir,
                       _read_log(out_dir / "metrics.csv", int(summary["steps"])), summary.get("eval") or {})


def train(config: TrainConfig, out_dir: str | Path, prep_dir: str | Path | None = None, *,
          lerobot_dir: str | Path | None = None, model: nn.Module | None = None, train_dataset=None,
          eval_dataset=None, resume: bool = True, stop_at_step: int | None = None,
          progress: bool = True) -> TrainResult:
    """Train (or resume training) a model and write checkpoints, a CSV log and the final model.

    Data: ``prep_dir`` (a prepared folder; windows from ``WindowDataset(prep_dir, split, protocol)``),
    ``lerobot_dir`` (LeRobot datasets by split, e.g. PREP/lerobot of ``egghand prepare --lerobot``; windows
    through delta_timestamps, the same as the prepared ones, statistics from the export's
    meta/egghand_stats.json) or explicit ``train_dataset`` / ``eval_dataset`` (any map-style dataset of
    window dicts, e.g. ``LeRobotWindowDataset``). The run's data identity is ``dataset_fingerprint``.
    Model: built from ``config.model_preset`` with the training split's normalisation statistics,
    or passed in (any ``nn.Module`` whose ``forward(batch)`` returns a dict with a scalar "loss").
    ``resume``: continue from the latest checkpoint in ``out_dir`` (config and data must match; a finished
    run is returned as it is); False starts over. A folder holding another run (other config or other data)
    or files of something else is refused (``egghand_lib.io.OutputFolderError``) unless ``resume=False``.
    ``stop_at_step``: stop after that optimizer step with a checkpoint, without finishing (the next
    call resumes). Outputs in ``out_dir``: settings.json, train_config.json, metrics.csv, checkpoints/,
    model/ (when finished) and summary.json.
    """
    config.validate()
    if train_dataset is None and prep_dir is None and lerobot_dir is None:
        raise ValueError("train: give prep_dir, lerobot_dir or train_dataset")
    if prep_dir is not None and lerobot_dir is not None:
        raise ValueError("train: give prep_dir or lerobot_dir, not both")
    out_dir = Path(out_dir)

    # Data
    if train_dataset is None:
        source = {"prep_dir": prep_dir, "lerobot_dir": lerobot_dir}
        train_dataset = open_windows(config.train_split, config.protocol, edges=config.edges, **source)
        if eval_dataset is None and config.eval_split:
            try:
                eval_dataset = open_windows(config.eval_split, config.protocol, edges=config.edges, **source)
            except (FileNotFoundError, ValueError) as e:
                print(f"[train] no evaluation split {config.eval_split!r} ({e}); evaluating nothing")
    # The folder: a run of the same config on the same data resumes (or, finished, is returned as it is);
    # another run there is refused unless resume=False (start over). Only the main process touches it; the
    # others wait for it (several processes clearing and writing one folder would race).
    accelerator = _accelerator(config)
    device, world, rank = accelerator.device, accelerator.num_processes, accelerator.process_index
    settings = {"train_config": config.weight_fields(), "data": training_data_identity(train_dataset)}
    if world > 1:  # the global batch (and the data order) depends on the number of processes too
        settings["processes"] = world
    if accelerator.is_main_process:
        status = claim_output_folder(out_dir, settings, settings_name=RUN_SETTINGS_NAME, overwrite=not resume,
                                     what="training run", mismatch="that used a different config or other data")
        if status == "resume" and not resume:
            _clear_run(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        clean_partials(out_dir)
        if (out_dir / "checkpoints").is_dir():
            clean_partials(out_dir / "checkpoints")
        write_settings(out_dir, settings, RUN_SETTINGS_NAME)
    accelerator.wait_for_everyone()
    if resume and model is None and (done := _finished_result(out_dir)) is not None:
        print(f"  done already ({out_dir} holds this run, finished)")
        return done

    cache_overrides: dict[str, Any] = {}
    cache_root, frozen_encoder = config.feature_cache, None
    if cache_root == "auto":
        if model is not None:
            raise ValueError("feature_cache='auto' builds the model from the config; pass model=None")
        splits = {config.train_split: train_dataset, config.eval_split: eval_dataset if config.eval_split else None}
        frozen_encoder, cache_root = _auto_feature_cache(config, out_dir, splits, progress)
    if cache_root:
        train_dataset, cache_overrides = attach_feature_cache(train_dataset, cache_root, config.train_split)
        if eval_dataset is not None and config.eval_split:
            eval_dataset, _ = attach_feature_cache(eval_dataset, cache_root, config.eval_split)
    collate = getattr(train_dataset, "collate_fn", collate_windows)

    ckpts = list_checkpoints(out_dir)
    if accelerator.is_main_process:
        atomic_write_json(out_dir / "train_config.json", config.to_dict())

    set_seed(config.seed)
    if model is None:
        model = build_model(config.replace(model_overrides={**config.model_overrides, **cache_overrides}),
                            stats=getattr(train_dataset, "stats", None))
    model.to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, betas=config.adam_betas)
    total_steps = total_optimizer_steps(len(train_dataset), config, world)
    scheduler = build_scheduler(optimizer, total_steps, config.warmup_ratio)
    model, optimizer = accelerator.prepare(model, optimizer)
    raw_model = accelerator.unwrap_model(model)

    step, elapsed0 = 0, 0.0
    if ckpts and resume:
        state = load_checkpoint(ckpts[-1], raw_model, optimizer, scheduler)
        step, elapsed0 = int(state["step"]), float(state.get("elapsed_s", 0.0))
        set_rng_state(state["rng"])
        print(f"[train] resumed from {ckpts[-1]} at step {step}/{total_steps}")
    history = _read_log(out_dir / "metrics.csv", step)

    eval_idx = eval_indices(len(eval_dataset), config.eval_max_windows) if eval_dataset is not None else []
    spe = steps_per_epoch(len(train_dataset), config, world)
    t0 = time.perf_counter() - elapsed0
    eval_metrics: dict[str, float] = {}
    last_saved = step

    def checkpoint(at_step: int, rng: dict[str, Any]) -> None:
        nonlocal last_saved
        if accelerator.is_main_process:
            save_checkpoint(out_dir / "checkpoints" / f"step_{at_step:06d}", raw_model, optimizer, scheduler, at_step,
                            rng, {"total_steps": total_steps, "elapsed_s": time.perf_counter() - t0,
                                  "config": config.name})
            _prune_checkpoints(out_dir, config.keep_checkpoints)
        last_saved = at_step

    def run_eval() -> dict[str, float]:
        if not eval_idx:
            return {}
        return evaluate_during_training(raw_model, eval_dataset, eval_idx, config.batch_size, device, collate)

    indices = micro_batch_indices(len(train_dataset), config.batch_size, config.seed,
                                  start=step * config.grad_accum_steps, rank=rank, world=world,
                                  accum=config.grad_accum_steps)
    batches = _micro_batches(train_dataset, indices, collate, config.num_workers)
    bar = tqdm(total=total_steps, initial=step, desc=f"train {config.name}", disable=not progress or
               not accelerator.is_main_process, dynamic_ncols=True)
    end_step = total_steps if stop_at_step is None else min(total_steps, int(stop_at_step))
    boundary_rng = rng_state()  # RNG at the last completed optimizer step (for Ctrl-C checkpoints)
    parts: dict[str, list[float]] = {}
    try:
        while step < end_step:
            batch = batch_to(next(batches), device)
            with accelerator.accumulate(model):
                out = model(batch)
                accelerator.backward(out["loss"])
                grad_norm = None
                if accelerator.sync_gradients and config.max_grad_norm:
                    grad_norm = accelerator.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            for k, v in out.items():  # the loss and every scalar part the model reports (abs, rel, pair, ...)
                if torch.is_tensor(v) and v.ndim == 0:
                    parts.setdefault(k, []).append(float(v.detach()))
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            step += 1
            boundary_rng = rng_state()
            bar.update(1)
            row: dict[str, Any] = {}
            if step % max(1, config.log_every) == 0 or step == total_steps:
                row = {"step": step, "epoch": step / spe, "lr": scheduler.get_last_lr()[0],
                       "loss": float(np.mean(parts["loss"])), "elapsed_s": time.perf_counter() - t0}
                for k in parts:
                    if k != "loss":
                        row[f"loss_{k}"] = float(np.mean(parts[k]))
                if grad_norm is not None:
                    row["grad_norm"] = float(grad_norm)
                bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.2e}")
            parts = {} if row else parts
            if eval_idx and ((config.eval_every and step % config.eval_every == 0) or step == total_steps):
                eval_metrics = run_eval()
                row = {"step": step, "epoch": step / spe, "elapsed_s": time.perf_counter() - t0, **row, **eval_metrics}
                bar.write(f"[train] step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in eval_metrics.items()))
            if row:
                history.append(row)
                if accelerator.is_main_process:
                    _write_log(out_dir / "metrics.csv", history)
            if (config.save_every and step % config.save_every == 0) or step == end_step:
                checkpoint(step, boundary_rng)
    except KeyboardInterrupt:
        # Weights, optimizer and scheduler are still those of the last completed step; partial gradients
        # of the interrupted accumulation are dropped, and the RNG is rewound to that step.
        if step > last_saved:
            checkpoint(step, boundary_rng)
            print(f"\n[train] interrupted: checkpoint saved at step {step}; run again to resume")
        raise
    finally:
        bar.close()

    finished = step >= total_steps
    model_dir = None
    if frozen_encoder is not None and raw_model.encoder is None:
        # trained on the cached features of this frozen encoder: give it back, so the model reads frames again
        mcfg = model_config(config)
        raw_model.attach_encoder(frozen_encoder, name=mcfg.encoder, kwargs=mcfg.encoder_kwargs)
    if finished and accelerator.is_main_process:
        model_dir = save_model(raw_model, out_dir / "model")
        atomic_write_json(out_dir / "summary.json", {
            "config": config.to_dict(), "steps": step, "total_steps": total_steps, "train_windows": len(train_dataset),
            "processes": world,
            "elapsed_s": time.perf_counter() - t0, "eval": eval_metrics,
            "final_loss": next((r["loss"] for r in reversed(history) if r.get("loss") not in (None, "")), None),
        })
    return TrainResult(raw_model, out_dir, step, total_steps, finished, model_dir, history, eval_metrics)


