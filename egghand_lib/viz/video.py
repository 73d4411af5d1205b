"""Forecasts drawn on the egocentric video: one frame at a time (numpy) and an H.264 mp4 writer (PyAV).

``draw_forecast_frame`` draws, on the frame of time t and with that frame's camera, the observed hands at t
(blue), the ground truth 1 s later (green, when known) and the forecast (red: its last frame's skeleton and
each wrist's path over the forecast's 10 frames). ``VideoWriter`` encodes frames to an mp4 that appears
atomically when closed without error. PyAV is imported when a writer opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from egghand_lib.io import atomic_path
from egghand_lib.skeleton import WRIST_INDICES
from egghand_lib.viz.common import COLORS, as_numpy
from egghand_lib.viz.overlays import draw_skeleton, project_points, visible_in_image


def _draw(image: np.ndarray, joints: Any, valid: Any, extrinsics: np.ndarray, K: np.ndarray, color: str,
          radius: int, draw_bones: bool = True) -> np.ndarray:
    uv, depth = project_points(as_numpy(joints), extrinsics, K)
    mask = visible_in_image(uv, depth, (image.shape[1], image.shape[0]), valid)
    return draw_skeleton(image, uv, mask, color=color, radius=radius, draw_bones=draw_bones)


def draw_forecast_frame(image: Any, intrinsics: Any, extrinsics: Any, *,
                        observed: tuple[Any, Any] | None = None, forecast: Any | None = None,
                        ground_truth: tuple[Any, Any] | None = None, scale: int = 1) -> np.ndarray:
    """The frame (H, W, 3) uint8 with hands drawn, upsampled ``scale`` times (nearest neighbour) first.

    intrinsics (3, 3) of ``image``; extrinsics (3|4, 4) world -> camera of this frame. observed: (joints (42, 3),
    valid (42,)) world, at this frame; forecast: (T, 42, 3) world; ground_truth: (joints (42, 3), valid (42,))
    world at the forecast's last frame. Invalid joints, joints behind the camera or outside the image are not
    drawn. Returns a new (scale H, scale W, 3) uint8 array.
    """
    img = np.asarray(as_numpy(image), dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image: expected (H, W, 3) uint8, got {img.shape}")
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"scale: expected an integer >= 1, got {scale}")
    if scale > 1:
        img = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)
    K = np.asarray(as_numpy(intrinsics), dtype=np.float64).copy()
    K[:2] *= scale
    K[:2, 2] += (scale - 1) / 2  # pixel centres of the upsampled image
    E = np.asarray(as_numpy(extrinsics), dtype=np.float64)
    r = max(1, scale)
    if observed is not None:
        img = _draw(img, observed[0], observed[1], E, K, COLORS["observed"], r)
    if ground_truth is not None:
        img = _draw(img, ground_truth[0], ground_truth[1], E, K, COLORS["ground truth"], r)
    if forecast is not None:
        F = as_numpy(forecast)
        wrists = np.zeros((len(F), 42, 3))
        wrist_valid = np.zeros((len(F), 42), bool)
        for w in WRIST_INDICES:  # each wrist's path: one dot per forecast frame
            wrists[:, w], wrist_valid[:, w] = F[:, w], True
        for k in range(len(F) - 1):
            img = _draw(img, wrists[k], wrist_valid[k], E, K, COLORS["forecast"], max(1, r // 2), draw_bones=False)
        img = _draw(img, F[-1], None, E, K, COLORS["forecast"], r)
    return img


class VideoWriter:
    """Frames (H, W, 3) uint8 RGB -> an H.264 mp4 at ``fps`` frames per second.

    The file is written under a temporary name beside ``path`` and renamed onto it by ``close()`` (or at the
    end of a ``with`` block without error); on an error nothing is left. All frames must have one size; odd
    sizes are padded by one edge pixel (yuv420p needs even ones). ``frames_written`` counts them.
    """

    def __init__(self, path: str | Path, fps: int = 10, crf: int = 20):
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise ValueError(f"path: {self.path} must end in .mp4")
        self.fps, self.crf = int(fps), int(crf)
        self.frames_written = 0
        self._atomic = None  # the atomic_path context of the temporary file
        self._container = self._stream = None
        self._size: tuple[int, int] | None = None

    def _open(self, h: int, w: int) -> None:
        import av  # PyAV: heavy, imported when a video is written

        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._container = av.open(str(tmp), "w", format="mp4")
        self._stream = self._container.add_stream("libx264", rate=self.fps)
        self._stream.width, self._stream.height, self._stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
        self._stream.options = {"crf": str(self.crf)}
        self._size = (h, w)

    def write(self, frame: Any) -> None:
        import av  # PyAV: heavy, imported when a video is written

        img = np.ascontiguousarray(np.asarray(frame, dtype=np.uint8))
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"frame: expected (H, W, 3) uint8 RGB, got {img.shape}")
        if self._container is None:
            self._open(*img.shape[:2])
        if img.shape[:2] != self._size:
            raise ValueError(f"frame: size {img.shape[:2]} differs from the video's {self._size}")
        if img.shape[0] % 2 or img.shape[1] % 2:
            img = np.pad(img, ((0, img.shape[0] % 2), (0, img.shape[1] % 2), (0, 0)), mode="edge")
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> Path:
        """Flush, close and move the video into place; returns its path."""
        if self._container is None:
            raise ValueError(f"{self.path}: no frame was written")
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        self._atomic.__exit__(None, None, None)  # renames the temporary file onto self.path
        self._atomic = None
        return self.path

    def abort(self) -> None:
        """Drop the video: close and remove the temporary file (the destination is untouched)."""
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._atomic is not None:
            err = RuntimeError("video aborted")
            self._atomic.__exit__(RuntimeError, err, None)  # removes the temporary file
            self._atomic = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


__all__ = ["VideoWriter", "draw_forecast_frame"]
