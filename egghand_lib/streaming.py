"""Streaming forecasts: EggHand fed one frame at a time, as a head-mounted device would feed it.

    forecaster = StreamingForecaster(EggHandPolicy.from_pretrained("runs/cpu-small"), task="cut the bread")
    for frame in camera:                                         # 10 fps
        out = forecaster.step(frame.rgb, frame.joints, frame.valid, frame.world_to_camera, timestamp=frame.t)
        if out is not None:                                      # from 2 s (20 frames) on
            out.world       # (10, 42, 3) the next second, world coordinates (metres)
            out.canonical   # (10, 42, 3) the same in the window's canonical frame (out.canonical_T: world -> it)

Per frame: an RGB image (H, W, 3) uint8 (None when only the image was lost), the 42 joints of an upstream
hand-pose estimator in WORLD metres with their validity (NaN joints count as invalid; a missing hand is 21
invalid joints) and the camera pose world -> camera (3x4 or 4x4).

The window of frame t is the 20 slots t-19..t of the 10 fps clock, canonicalised by the same function as
the datasets' windows (``egghand_lib.data.windows.canonicalize_windows``), so a stream of an episode's frames
gives exactly the windows of ``WindowDataset`` and the forecasts of ``EggHandPolicy.forecast`` on them.

- Warm-up: a forecast comes once the stream spans ``min_frames`` slots (default 20 = 2 s). With fewer
  (``min_frames`` < 20) the missing past is padded as a dataset pads an episode's first windows: joints
  invalid, camera pose and image of the first frame.
- Dropped frames (a timestamp more than 0.1 s after the previous one): the missing slots get invalid joints
  and hold the pose and image of the last frame before them. A gap of 20 slots or more leaves nothing of the
  window: the stream starts again (warm-up included). Timestamps must increase.
- Incremental features: for an encoder whose video tokens come from per-frame features
  (``frames_independent``: the offline CNN, InternVL) each image is encoded once, when it arrives, and a
  window's tokens are assembled from the features of its 4 frames (offsets -18, -12, -6, 0): one frame's
  CNN per call instead of four. A clip encoder (EgoVideo: its video ViT attends across the 4 frames jointly)
  has no per-frame part; its 4-frame clip is encoded on every call (about 70 s on 2 CPU cores: precompute
  features offline, or use a GPU). The prompt's text features are computed once per task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from egghand_lib.batch import FPS, NUM_OBS, OBS_OFFSETS, VIDEO_OFFSETS, target_offsets
from egghand_lib.data.windows import canonicalize_windows
from egghand_lib.geometry import invert_rigid, transform_points
from egghand_lib.skeleton import NUM_JOINTS


@dataclass
class StreamForecast:
    """One forecast of the stream, made at frame ``timestamp`` (seconds).

    canonical (10, 42, 3) and world (10, 42, 3) float32 metres at ``target_timestamps`` (10,) seconds;
    canonical_T (4, 4) world -> canonical (the camera of the window's first slot); num_observed: real frames
    among the window's 20 slots; window: the canonical arrays the model saw (past_joints (20, 42, 3),
    past_valid (20, 42), past_extrinsics (20, 3, 4)).
    """

    timestamp: float
    canonical: np.ndarray
    world: np.ndarray
    canonical_T: np.ndarray
    target_timestamps: np.ndarray
    num_observed: int
    window: dict[str, np.ndarray]


@dataclass
class _Frame:
    slot: int
    joints: np.ndarray  # (42, 3) float32, 0 where invalid
    valid: np.ndarray  # (42,) bool
    extrinsics: np.ndarray  # (3, 4) float32 world -> camera
    image_slot: int  # slot of the image this frame shows (its own, or the last one before it)


def _image_tensor(image: Any) -> torch.Tensor:
    """(H, W, 3) uint8 array, or a (3, H, W) tensor (uint8, or float in [0, 1]) -> (3, H, W) uint8 tensor."""
    if isinstance(image, torch.Tensor):
        x = image.detach().cpu()
        if x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"image: expected a (3, H, W) tensor, got {tuple(x.shape)}")
        return x if x.dtype == torch.uint8 else (x.float() * 255).round().clamp(0, 255).to(torch.uint8)
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"image: expected (H, W, 3) uint8 RGB, got {a.shape} {a.dtype}")
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)


class StreamingForecaster:
    """Forecasts 1 s of both hands from a 10 fps stream of frames (see the module docstring).

    ``model``: an EggHandPolicy (any module with its ``forecast(batch)`` and ``encoder``); ``encoder``: the
    frozen encoder of a model trained on cached features (default: ``model.encoder``). ``task``: the prompt.
    ``min_frames``: slots the stream must span before the first forecast (1..20; 20 = 2 s). ``up``: the
    world's up axis (that of the training data). The model is put in eval mode.
    """

    def __init__(self, model: nn.Module, task: str = "", *, encoder: nn.Module | None = None,
                 min_frames: int = NUM_OBS, up: tuple[float, float, float] | None = None):
        if not 1 <= int(min_frames) <= NUM_OBS:
            raise ValueError(f"min_frames: expected 1..{NUM_OBS}, got {min_frames}")
        self.model = model.eval()
        self.encoder = encoder if encoder is not None else getattr(model, "encoder", None)
        if self.encoder is None:
            raise ValueError("model: has no encoder (trained on cached features); pass encoder= the frozen encoder "
                             "that computed them")
        self.min_frames = int(min_frames)
        self.up = tuple(up) if up is not None else (0.0, 0.0, 1.0)
        self.protocol = getattr(getattr(model, "config", None), "protocol", "future")
        self.incremental = bool(getattr(self.encoder, "frames_independent", False))
        self.task = task
        self._text: tuple[torch.Tensor, torch.Tensor] | None = None
        self.frames_encoded = 0  # images through the encoder's per-frame part (incremental encoders)
        self.reset()

    @property
    def device(self) -> torch.device:
        return getattr(self.model, "device", torch.device("cpu"))

    def reset(self) -> None:
        """Forget the stream (a new take, or a jump in time)."""
        self._frames: list[_Frame] = []  # oldest first: the window's frames + the last one before it
        self._images: dict[int, torch.Tensor] = {}  # image slot -> per-frame features, or the image (clips)
        self._first_slot: int | None = None
        self._last_slot: int | None = None

    def set_task(self, task: str) -> None:
        """Change the prompt (its text features are computed at the next forecast)."""
        if task != self.task:
            self.task, self._text = task, None

    # ------------------------------------------------------------------ input
    def _slot(self, timestamp: float | None) -> int:
        if timestamp is None:
            return 0 if self._last_slot is None else self._last_slot + 1
        slot = int(round(float(timestamp) * FPS))
        if self._last_slot is not None and slot <= self._last_slot:
            raise ValueError(f"timestamp: {timestamp} s is not after the previous frame "
                             f"({self._last_slot / FPS:.1f} s at {FPS} fps)")
        return slot

    @torch.no_grad()
    def _encode_image(self, image: torch.Tensor) -> torch.Tensor:
        if not self.incremental:
            return image  # a clip encoder needs the pixels of all 4 frames at once
        self.frames_encoded += 1
        return self.encoder.encode_frames(image[None].to(self.device))[0]

    def step(self, image: Any, joints: Any, valid: Any, extrinsics: Any,
             timestamp: float | None = None) -> StreamForecast | None:
        """Add the frame at ``timestamp`` (seconds; default: 0.1 s after the previous one) and forecast.

        image (H, W, 3) uint8 or None, joints (42, 3) world metres (NaN = missing), valid (42,) bool or None
        (= the finite joints), extrinsics (3, 4) or (4, 4) world -> camera. Returns None during the warm-up.
        """
        J = np.asarray(joints, dtype=np.float32)
        if J.shape != (NUM_JOINTS, 3):
            raise ValueError(f"joints: expected ({NUM_JOINTS}, 3), got {J.shape}")
        V = np.isfinite(J).all(-1)
        if valid is not None:
            v = np.asarray(valid, dtype=bool)
            if v.shape != (NUM_JOINTS,):
                raise ValueError(f"valid: expected ({NUM_JOINTS},), got {v.shape}")
            V &= v
        E = np.asarray(extrinsics, dtype=np.float32)
        if E.shape not in ((3, 4), (4, 4)) or not np.isfinite(E).all():
            raise ValueError(f"extrinsics: expected a finite (3, 4) or (4, 4) world -> camera matrix, got {E.shape}")
        slot = self._slot(timestamp)
        if self._last_slot is not None and slot - self._last_slot >= NUM_OBS:
            self.reset()  # nothing of the window is left: start again
        if image is None:
            if not self._frames:
                raise ValueError("image: the first frame of a stream needs an image")
            image_slot = self._frames[-1].image_slot
        else:
            image_slot = slot
            self._images[slot] = self._encode_image(_image_tensor(image))
        self._frames.append(_Frame(slot, np.where(V[:, None], J, np.float32(0)), V, E[:3], image_slot))
        if self._first_slot is None:
            self._first_slot = slot
        self._last_slot = slot
        self._prune(slot)
        if slot - self._first_slot + 1 < self.min_frames:
            return None
        return self._forecast(slot)

    def _prune(self, slot: int) -> None:
        """Keep the frames of the window t-19..t plus the last one before it (what dropped slots hold)."""
        start = slot - NUM_OBS + 1
        inside = [i for i, f in enumerate(self._frames) if f.slot >= start]
        keep_from = max(0, inside[0] - 1)
        self._frames = self._frames[keep_from:]
        used = {f.image_slot for f in self._frames}
        self._images = {s: x for s, x in self._images.items() if s in used}

    # ------------------------------------------------------------------ window + forecast
    def window_arrays(self, slot: int | None = None) -> dict[str, np.ndarray]:
        """The world-frame window of the current frame: past_joints (20, 42, 3), past_valid (20, 42),
        past_extrinsics (20, 3, 4), image_slots (20,) and observed (20,) bool (a real frame in the slot)."""
        if not self._frames:
            raise ValueError("window_arrays: the stream has no frame yet")
        slot = self._last_slot if slot is None else slot
        by_slot = {f.slot: f for f in self._frames}
        J = np.zeros((NUM_OBS, NUM_JOINTS, 3), np.float32)
        V = np.zeros((NUM_OBS, NUM_JOINTS), bool)
        E = np.zeros((NUM_OBS, 3, 4), np.float32)
        image_slots = np.zeros(NUM_OBS, np.int64)
        observed = np.zeros(NUM_OBS, bool)
        for k, off in enumerate(OBS_OFFSETS):
            s = slot + off
            f = by_slot.get(s)
            if f is not None:
                J[k], V[k], observed[k] = f.joints, f.valid, True
            else:  # dropped, or before the stream: hold the last frame before it, else clamp to the first one
                earlier = [g for g in self._frames if g.slot < s]
                f = earlier[-1] if earlier else self._frames[0]
            E[k], image_slots[k] = f.extrinsics, f.image_slot
        return {"past_joints": J, "past_valid": V, "past_extrinsics": E, "image_slots": image_slots,
                "observed": observed}

    @torch.no_grad()
    def _text_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._text is None:
            self._text = self.encoder.encode_text([self.task])
        return self._text

    @torch.no_grad()
    def _video_features(self, image_slots: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        picks = [int(image_slots[OBS_OFFSETS.index(o)]) for o in VIDEO_OFFSETS]
        stacked = torch.stack([self._images[s] for s in picks])[None]  # (1, 4, ...)
        if self.incremental:
            return self.encoder.video_tokens_from_frames(stacked)
        return self.encoder.video_for(stacked.to(self.device), [self.task])

    @torch.no_grad()
    def _forecast(self, slot: int) -> StreamForecast:
        w = self.window_arrays(slot)
        empty = np.zeros((1, 0, NUM_JOINTS, 3), np.float32)
        canon = canonicalize_windows(
            w["past_joints"][None], w["past_valid"][None], w["past_extrinsics"][None], empty,
            np.zeros((1, 0, NUM_JOINTS), bool), np.zeros((1, 0, 3, 4), np.float32), frame_valid=w["observed"][None],
            up=self.up,
        )
        vt, vm = self._video_features(w["image_slots"])
        tt, tm = self._text_features()
        dev = self.device
        batch = {
            "past_joints": torch.from_numpy(canon["past_joints"]).to(dev),
            "past_valid": torch.from_numpy(canon["past_valid"]).to(dev),
            "past_extrinsics": torch.from_numpy(canon["past_extrinsics"]).to(dev),
            "video_tokens": vt, "video_mask": vm, "text_tokens": tt, "text_mask": tm,
        }
        pred = self.model.forecast(batch)[0].float().cpu().numpy()  # (10, 42, 3) canonical
        C = canon["canonical_T"][0]
        world = transform_points(invert_rigid(C.astype(np.float64)), pred.astype(np.float64)).astype(np.float32)
        offsets = np.asarray(target_offsets(self.protocol), dtype=np.float64)
        return StreamForecast(
            timestamp=slot / FPS, canonical=pred, world=world, canonical_T=C,
            target_timestamps=(slot + offsets) / FPS, num_observed=int(w["observed"].sum()),
            window={k: canon[k][0] for k in ("past_joints", "past_valid", "past_extrinsics")},
        )


__all__ = ["StreamForecast", "StreamingForecaster"]
