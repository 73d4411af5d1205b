"""Pretraining a GR00T N1.5 action head at laptop size (``egghand pretrain head``), in GR00T-N1.5-3B's layout.

GR00T-N1.5-3B's action head was pretrained with flow matching on other embodiments' data before EggHand
fine-tuned it on EgoExo4D. The offline mirror: the cpu-small EggHand model (its adapters + the GR00T head)
trained with GR00T's own objective alone (``EggHandConfig.objective = "flow"``: velocity regression at a
Beta-distributed flow time, one DiT pass per step) on EgoSynth takes of seeds other than the fine-tuning
data's, reading the frozen EgoVideo-mini's cached features. Only the head is kept: ``export_action_head``
writes its tensors as ``action_head.*`` in a ``model.safetensors.index.json`` + shard folder, which
``EggHandConfig(decoder_init="gr00t", gr00t_path=...)`` loads with the same loader and report as the real
GR00T-N1.5-3B checkpoint; the adapters start anew at fine-tuning, as they do for EggHand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import nn

from egghand_lib.io import atomic_dir, atomic_write_json
from egghand_lib.models.gr00t_weights import INDEX_FILE, PREFIX
from egghand_lib.training import TrainConfig, TrainResult, train

SHARD_NAME = "model-00001-of-00001.safetensors"
HEAD_CONFIG_NAME = "action_head_config.json"


def head_pretrain_config(steps: int = 3000, feature_cache: str | Path | None = None, seed: int = 0,
                         **overrides: Any) -> TrainConfig:
    """The TrainConfig of a head pretraining run: cpu-small sizes, GR00T's flow objective, no motion MLP."""
    base = TrainConfig.named("cpu-small")
    model = {**base.model_overrides, "objective": "flow", "flow_loss_weight": 1.0, "motion_mlp": 0,
             "decoder_init": "random", "gr00t_path": None}
    return base.replace(name="pretrain-gr00t-head", max_steps=steps, seed=seed, eval_every=max(1, steps // 6),
                        save_every=max(1, steps // 10), model_overrides=model,
                        feature_cache=None if feature_cache is None else str(feature_cache), **overrides)


def export_action_head(model: nn.Module, folder: str | Path, **provenance: Any) -> Path:
    """Write ``model.action_head`` as a GR00T-layout checkpoint folder (atomically): the shard with the
    ``action_head.*`` tensors, its index, and the head's sizes + provenance in action_head_config.json."""
    head = getattr(model, "action_head", model)
    state = {f"{PREFIX}{k}": v.detach().cpu().contiguous().float() for k, v in head.state_dict().items()}
    index = {"metadata": {"total_size": int(sum(t.numel() * t.element_size() for t in state.values()))},
             "weight_map": {k: SHARD_NAME for k in sorted(state)}}
    folder = Path(folder)
    with atomic_dir(folder, overwrite=True) as tmp:
        save_file(state, str(tmp / SHARD_NAME), metadata={"format": "pt", "egghand": "gr00t-n1.5-mini-head"})
        cfg = getattr(head, "config", None)
        sizes = {k: v for k, v in vars(cfg).items() if not k.startswith("_")} if cfg is not None else {}
        atomic_write_json(tmp / HEAD_CONFIG_NAME, {"action_head": json.loads(json.dumps(sizes, default=str)),
                                                   "provenance": provenance})
        atomic_write_json(tmp / INDEX_FILE, index)  # the index last: the folder reads as complete
    return folder


def pretrain_head(config: TrainConfig, prep_dir: str | Path, out_dir: str | Path, *,
                  progress: bool = True) -> tuple[TrainResult, Path]:
    """Train ``config`` (see ``head_pretrain_config``) on ``prep_dir`` into ``out_dir`` (resumable), then export
    its action head to ``out_dir/gr00t_head``. Returns (the training result, the exported folder)."""
    if config.model_overrides.get("objective") != "flow":
        raise ValueError("config: a head pretraining run uses GR00T's flow objective "
                         "(model_overrides objective='flow')")
    result = train(config, out_dir, prep_dir=prep_dir, progress=progress)
    if not result.finished:
        raise RuntimeError(f"{out_dir}: pretraining stopped at step {result.step} of {result.total_steps}; run again")
    folder = export_action_head(result.model, Path(out_dir) / "gr00t_head", steps=result.step,
                                train_config=config.to_dict(), data=str(prep_dir))
    return result, folder
