"""The lerobot policy type "egghand": ``EggHandLeRobotPolicy``, lerobot's interface around ``EggHandPolicy``.

A lerobot batch is per frame: with the config's delta indices each key carries the window's time axis,
``observation.state`` (B, 30, 138) world joints + world -> camera at the observed and target offsets (for
protocol "future"), ``observation.joints_valid`` (B, 30, 42), ``observation.state_is_pad`` (B, 30),
``observation.images.ego`` (B, 30, 3, H, W) in [0, 1], ``action`` (B, 10, 126) world joints at the targets
and ``task``. ``windows(batch)`` turns it into EggHand's canonical window batch with the function
``LeRobotWindowDataset`` uses (``frames_to_windows`` -> ``canonicalize_windows``): one code path, so
``lerobot-train`` sees the very windows of ``egghand train``.

- ``forward(batch) -> (loss, {"abs", "rel", "pair"})``: EggHand's loss on the canonical forecast.
- ``predict_action_chunk(batch) -> (B, 10, 126)``: the forecast as lerobot actions, world joints in metres
  at the target offsets. A windowed batch is forecast as it is; a batch of single frames (a live robot or
  camera: ``observation.state`` (B, 138)) goes through one ``StreamingForecaster`` per row, which keeps the
  history (the first windows padded as a dataset pads an episode's start). ``reset()`` forgets it.
- ``select_action(batch) -> (B, 126)``: the first forecast frame (the next 10 fps frame).

Saved checkpoints hold lerobot's config.json (with the EggHandConfig inside) and EggHandPolicy's own
model.safetensors + stats.json, so ``EggHandPolicy.from_pretrained`` loads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from lerobot.policies.pretrained import PreTrainedPolicy
from torch import Tensor

from egghand_lib.batch import NUM_TARGET, VIDEO_OFFSETS
from egghand_lib.data.lerobot_dataset import (
    ACTION,
    IMAGE,
    STATE,
    STATS_FILE,
    VALID,
    frames_to_windows,
    read_sidecar,
    window_offsets,
)
from egghand_lib.geometry import invert_rigid, transform_points
from egghand_lib.models.egghand.configuration_egghand import LEROBOT_TYPE
from egghand_lib.models.egghand.modeling_egghand import EggHandPolicy
from egghand_lib.models.lerobot_policy.configuration_egghand import EggHandLeRobotConfig
from egghand_lib.normalization import load_stats
from egghand_lib.skeleton import NUM_JOINTS
from egghand_lib.streaming import StreamingForecaster

WINDOW_KEYS = ("past_joints", "past_valid", "past_extrinsics", "future_joints", "future_valid", "canonical_T")


class EggHandLeRobotPolicy(PreTrainedPolicy):
    """EggHand as a lerobot policy (see the module docstring). ``self.model`` is the EggHandPolicy.

    ``dataset_meta`` (lerobot passes the training dataset's metadata): the export's training statistics
    (meta/egghand_stats.json) and up axis (meta/egghand.json) are read from its root.
    """

    config_class = EggHandLeRobotConfig
    name = LEROBOT_TYPE

    def __init__(self, config: EggHandLeRobotConfig, dataset_stats: Any = None, dataset_meta: Any = None,
                 **kwargs: Any):
        super().__init__(config)
        if config.input_features:
            config.validate_features()
        stats = None
        if dataset_meta is not None:
            root = Path(dataset_meta.root)
            sidecar = read_sidecar(root)
            if config.up is None:
                config.up = [float(u) for u in sidecar.get("up", (0.0, 0.0, 1.0))]
            if not (root / STATS_FILE).is_file():
                raise FileNotFoundError(f"{root / STATS_FILE}: missing; EggHand normalises with the training "
                                        "statistics an `egghand prepare --lerobot` export carries")
            # lerobot's own dataset_stats describe the stored world-frame features, not the canonical windows
            stats = load_stats(root / STATS_FILE)
        self.model = EggHandPolicy(config.egghand_config(), stats=stats)
        self.reset()

    @property
    def up(self) -> tuple[float, float, float]:
        return tuple(self.config.up) if self.config.up is not None else (0.0, 0.0, 1.0)

    def reset(self) -> None:
        self._streams: dict[int, StreamingForecaster] = {}

    def get_optim_params(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ lerobot batch -> EggHand windows
    def windows(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The canonical window batch (egghand_lib.batch) of a lerobot batch read with the config's delta indices."""
        state = batch[STATE]
        if state.ndim != 3:
            raise ValueError(f"batch[{STATE!r}]: expected (B, T, 138) frames at the window offsets (a LeRobotDataset "
                             f"with this policy's delta_timestamps), got {tuple(state.shape)}")
        cpu = lambda key: batch[key].detach().cpu().numpy()  # noqa: E731
        arrays = frames_to_windows(cpu(STATE), cpu(VALID), cpu(f"{STATE}_is_pad"), cpu(ACTION), up=self.up,
                                   protocol=self.config.protocol)
        out: dict[str, Any] = {k: torch.from_numpy(arrays[k]).to(state.device) for k in WINDOW_KEYS}
        offsets = window_offsets(self.config.protocol)
        images = batch[IMAGE][:, [offsets.index(o) for o in VIDEO_OFFSETS]]  # (B, 4, 3, H, W) in [0, 1]
        out["frames"] = images if images.dtype == torch.uint8 else (images * 255).round().to(torch.uint8)
        task = batch.get("task", "")
        out["task"] = [task] * state.shape[0] if isinstance(task, str) else list(task)
        return out

    # ------------------------------------------------------------------ lerobot's policy interface
    def forward(self, batch: dict[str, Any], reduction: str = "mean") -> tuple[Tensor, dict[str, float]]:
        if reduction != "mean":
            raise NotImplementedError(f"policy egghand: reduction={reduction!r} (per-sample losses) is not supported")
        out = self.model(self.windows(batch))
        return out["loss"], {k: float(out[k].detach()) for k in ("abs", "rel", "pair", "flow") if k in out}

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Any], **kwargs: Any) -> Tensor:
        """(B, 10, 126) forecast world joints (metres) at the target offsets."""
        if batch[STATE].ndim == 3:
            windows = self.windows(batch)
            canonical = self.model.forecast(windows)  # (B, 10, 42, 3)
            to_world = invert_rigid(windows["canonical_T"].to(canonical.dtype))[:, None]
            world = transform_points(to_world, canonical)
        else:
            world = self._stream_forecasts(batch)
        return world.reshape(world.shape[0], NUM_TARGET, 3 * NUM_JOINTS)

    @torch.no_grad()
    def select_action(self, batch: dict[str, Any], **kwargs: Any) -> Tensor:
        """(B, 126): the forecast of the next frame."""
        return self.predict_action_chunk(batch)[:, 0]

    def _stream_forecasts(self, batch: dict[str, Any]) -> Tensor:
        """One frame per row -> (B, 10, 42, 3) world forecasts, each row its own stream."""
        state = batch[STATE]
        state = state[None] if state.ndim == 1 else state
        valid = batch[VALID]
        valid = valid[None] if valid.ndim == 1 else valid
        images = batch[IMAGE]
        images = images[None] if images.ndim == 3 else images
        task = batch.get("task", "")
        tasks = [task] * state.shape[0] if isinstance(task, str) else list(task)
        out = []
        for b in range(state.shape[0]):
            stream = self._streams.get(b)
            if stream is None:
                stream = self._streams[b] = StreamingForecaster(self.model, tasks[b], min_frames=1, up=self.up)
            stream.set_task(tasks[b])
            s = state[b].detach().cpu().numpy()
            joints = s[: 3 * NUM_JOINTS].reshape(NUM_JOINTS, 3)
            extrinsics = s[3 * NUM_JOINTS:].reshape(3, 4)
            forecast = stream.step(images[b], joints, valid[b].detach().cpu().numpy(), extrinsics)
            out.append(torch.from_numpy(np.ascontiguousarray(forecast.world)))
        return torch.stack(out).to(state.device)

    # ------------------------------------------------------------------ checkpoints
    def _save_pretrained(self, save_directory: Path, state_dict: dict | None = None) -> None:
        # lerobot's config.json (the EggHandConfig inside) beside EggHandPolicy's own weights and statistics
        self.config._save_pretrained(Path(save_directory))
        self.model.save_weights(save_directory)

    @classmethod
    def _load_as_safetensor(cls, model: EggHandLeRobotPolicy, model_file: str, map_location: str,
                            strict: bool) -> EggHandLeRobotPolicy:
        model.model.load_weights(model_file)
        return model


__all__ = ["EggHandLeRobotPolicy"]
