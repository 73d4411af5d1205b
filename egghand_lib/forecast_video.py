"""A take's video with EggHand's streaming forecasts drawn on it (``egghand forecast``).

    from egghand_lib.forecast_video import forecast_take_video
    forecast_take_video("take.mp4", "hand.json", "camera.json", "runs/cpu-small", "out.mp4", ground_truth="hand.json")

Inputs in the EgoExo4D layout, read by ``egghand_lib.data.egoexo4d``: the ego RGB video (30 fps), a hand-pose
file (``annotations/ego_pose/{split}/hand/...``: the observed hands, e.g. from an upstream estimator) and the
camera-pose file (intrinsics + world -> camera per frame). The take runs at 10 fps (every 3rd video frame from
``start``, by default the first frame with both a hand pose and a camera pose) through a
``StreamingForecaster``: one video frame out per 10 fps frame in. On each frame: the observed hands (blue), the
forecast made at that frame (red: the hands 1 s later and each wrist's path there) and, with
``ground_truth`` (a hand file), the true hands 1 s later (green), all in the current camera. A frame without a
camera pose is a dropped frame for the forecaster (drawn without hands); a frame without hands is forecast
with both hands missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from egghand_lib.batch import FRAME_STRIDE, NUM_OBS
from egghand_lib.data.egoexo4d import (
    HandAnnotation,
    read_camera_pose,
    read_hand_annotation,
    read_video_frames,
    resize_intrinsics,
    video_info,
)
from egghand_lib.models.egghand import EggHandPolicy
from egghand_lib.skeleton import NUM_JOINTS
from egghand_lib.streaming import StreamingForecaster
from egghand_lib.viz.video import VideoWriter, draw_forecast_frame

VIDEO_FPS = 30  # EgoExo4D frame numbers count 30 fps video frames
CHUNK = 32  # 10 fps frames decoded per seek


def _hands_at(ann: HandAnnotation | None, frame_number: int) -> tuple[np.ndarray, np.ndarray]:
    """(joints (42, 3) world with NaN where absent, valid (42,)) of a hand file at a frame; all missing if absent."""
    if ann is not None:
        i = int(np.searchsorted(ann.frame_numbers, frame_number))
        if i < len(ann.frame_numbers) and ann.frame_numbers[i] == frame_number:
            J = ann.joints[i]
            return J, np.isfinite(J).all(-1)
    return np.full((NUM_JOINTS, 3), np.nan), np.zeros(NUM_JOINTS, bool)


def take_frame_numbers(hands: HandAnnotation, camera_frames: np.ndarray, num_video_frames: int | None,
                       start: int | None = None, max_frames: int | None = None) -> np.ndarray:
    """The 10 fps frame numbers of a take: ``start`` (default: the first frame with hands and a camera pose),
    then every 3rd frame up to the last camera pose (and the video's last frame)."""
    if start is None:
        both = np.intersect1d(hands.frame_numbers, camera_frames)
        if both.size == 0:
            raise ValueError(f"{hands.path}: no frame has both a hand pose and a camera pose")
        start = int(both[0])
    last = int(camera_frames.max()) if len(camera_frames) else -1
    if num_video_frames:
        last = min(last, num_video_frames - 1)
    numbers = np.arange(int(start), last + 1, FRAME_STRIDE, dtype=np.int64)
    if numbers.size == 0:
        raise ValueError(f"start: frame {start} is after the take's last frame with a camera pose ({last})")
    return numbers if max_frames is None else numbers[: int(max_frames)]


def forecast_take_video(video: str | Path, poses: str | Path, camera: str | Path, model: nn.Module | str | Path,
                        out: str | Path, *, ground_truth: str | Path | None = None, task: str = "",
                        size: int = 224, scale: int = 2, start: int | None = None, max_frames: int | None = None,
                        min_frames: int = NUM_OBS, camera_name: str | None = None, device: str | None = None,
                        up: tuple[float, float, float] | None = None, progress: bool = True) -> dict[str, Any]:
    """Stream a take through the model and write ``out`` (.mp4, 10 fps) with the hands drawn (module docstring).

    ``model``: an EggHandPolicy or what ``EggHandPolicy.from_pretrained`` reads. ``size``: the frames' size
    for the model (short-side resize + centre crop, as ``egghand prepare --size``); ``scale``: output upsampling
    for drawing. Returns {"out", "frames" (written), "forecasts" (frames with a forecast), "frame_numbers"}.
    """
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"out: {out} must end in .mp4")
    hands = read_hand_annotation(poses)
    gt = read_hand_annotation(ground_truth) if ground_truth is not None else None
    cam = read_camera_pose(camera, camera_name)
    info = video_info(video)
    numbers = take_frame_numbers(hands, cam.frame_numbers, info["frames"] or None, start, max_frames)
    K = resize_intrinsics(cam.intrinsics, (info["height"], info["width"]), size)
    net = model if isinstance(model, nn.Module) else EggHandPolicy.from_pretrained(model)
    if device is not None:
        net = net.to(device)
    forecaster = StreamingForecaster(net, task=task, min_frames=min_frames, up=up)
    found, extrinsics = cam.lookup(numbers)
    writer = VideoWriter(out, fps=VIDEO_FPS // FRAME_STRIDE)
    n_forecasts = 0
    bar = tqdm(total=len(numbers), desc=f"forecast {Path(video).name}", unit="frame", disable=not progress)
    try:
        for lo in range(0, len(numbers), CHUNK):
            chunk = numbers[lo: lo + CHUNK]
            images = read_video_frames(video, chunk, size)
            for k, (fn, image) in enumerate(zip(chunk, images, strict=True)):
                i = lo + k
                joints, valid = _hands_at(hands, int(fn))
                if not found[i]:  # no camera pose: a dropped frame for the forecaster, drawn as it is
                    writer.write(draw_forecast_frame(image, K, np.eye(3, 4), scale=scale))
                    bar.update(1)
                    continue
                result = forecaster.step(image, joints, valid, extrinsics[i], timestamp=(fn - numbers[0]) / VIDEO_FPS)
                later = None
                if result is not None:
                    n_forecasts += 1
                    if gt is not None:  # the truth at the forecast's last frame
                        t_last = numbers[0] + round(float(result.target_timestamps[-1]) * VIDEO_FPS)
                        later = _hands_at(gt, int(t_last))
                frame = draw_forecast_frame(image, K, extrinsics[i], observed=(joints, valid),
                                            forecast=None if result is None else result.world,
                                            ground_truth=later, scale=scale)
                writer.write(frame)
                bar.update(1)
        path = writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    return {"out": path, "frames": writer.frames_written, "forecasts": n_forecasts,
            "frame_numbers": numbers.tolist()}


__all__ = ["forecast_take_video", "take_frame_numbers"]
