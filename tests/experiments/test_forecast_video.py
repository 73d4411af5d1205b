"""`egghand forecast`: a take streamed through a model, written as a video with the hands drawn."""

from __future__ import annotations

import av
import numpy as np
import pytest

from egghand_lib.cli import main as cli_main
from egghand_lib.forecast_video import forecast_take_video
from tests.fixtures.egoexo4d_takes import camera_path_file, hand_path, make_take, write_dataset
from tests.fixtures.learnable_episodes import fake_datasets, single_thread, tiny_model

N = 40  # annotated frames 0, 3, ..., 117: 40 frames at 10 fps


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    root = tmp_path_factory.mktemp("take")
    tk = make_take("t1", n=N, speed=0.02, turn=0.01)
    tk.joints[25:28, 21:] = np.nan  # the left hand missing for a moment
    write_dataset(root, [tk])
    video = root / "takes" / tk.take_name / "frame_aligned_videos" / "aria01_214-1.mp4"
    return video, hand_path(root, tk), camera_path_file(root, tk)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    train_ds, _ = fake_datasets(num_train=3, num_test=1)
    path = tmp_path_factory.mktemp("model") / "model"
    tiny_model(train_ds).save_pretrained(path)  # untrained, anchored: forecasts "hold the last pose"
    return path


def decode(path):
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def reddish(frames):
    """(N,) pixels per frame in the forecast colour (#d62728, allowing for lossy coding); the fixture's frames
    are flat colours with blue 128, the observed hands blue and the ground truth green."""
    f = frames.astype(int)
    return ((f[..., 0] > 150) & (f[..., 1] < 100) & (f[..., 2] < 100)).sum(axis=(1, 2))


def greenish(frames):
    f = frames.astype(int)
    return ((f[..., 1] > 120) & (f[..., 0] < 100) & (f[..., 2] < 100)).sum(axis=(1, 2))


def test_cli_writes_one_frame_per_10fps_frame_with_forecasts_after_the_warmup(take, model_dir, tmp_path, capsys):
    video, poses, camera = take
    out = tmp_path / "videos" / "forecast.mp4"
    with single_thread():
        code = cli_main(["forecast", "--video", str(video), "--poses", str(poses), "--camera", str(camera),
                         "--model", str(model_dir), "--out", str(out), "--ground-truth", str(poses), "--size", "64",
                         "--scale", "2", "--task", "reach for the cup", "--no-progress"])
    assert code == 0 and f"{N} frames, {N - 19} with a forecast" in capsys.readouterr().out
    frames = decode(out)
    assert frames.shape == (N, 128, 128, 3)
    red, green = reddish(frames), greenish(frames)
    assert (red[:19] == 0).all() and (red[19:] > 0).all()  # a forecast on every frame from 2 s on
    # the truth 1 s later exists for frames up to 30 frames before the end
    assert (green[:19] == 0).all() and (green[19:N - 10] > 0).all() and (green[N - 10:] == 0).all()
    assert [p.name for p in out.parent.iterdir()] == ["forecast.mp4"]


def test_library_limits_warmup_and_handles_missing_camera_poses(take, model_dir, tmp_path):
    video, poses, camera = take
    with single_thread():
        res = forecast_take_video(video, poses, camera, model_dir, tmp_path / "a.mp4", size=64, scale=1,
                                  max_frames=12, min_frames=5, progress=False)
    assert res["frames"] == 12 and res["forecasts"] == 8 and res["frame_numbers"] == list(range(0, 36, 3))
    frames = decode(res["out"])
    assert frames.shape == (12, 64, 64, 3) and (reddish(frames)[4:] > 0).all() and reddish(frames)[0] == 0
    # frames without a camera pose: dropped for the forecaster, written without hands
    root = tmp_path / "gaps"
    tk = make_take("t2", n=20)
    tk.camera_frames = np.setdiff1d(tk.frames, [30, 33])
    write_dataset(root, [tk])
    with single_thread():
        res = forecast_take_video(root / "takes" / tk.take_name / "frame_aligned_videos" / "aria01_214-1.mp4",
                                  hand_path(root, tk), camera_path_file(root, tk), model_dir, tmp_path / "g.mp4",
                                  size=64, scale=1, min_frames=5, progress=False)
    red = reddish(decode(res["out"]))
    assert res["frames"] == 20 and res["forecasts"] == 20 - 4 - 2
    assert (red[[10, 11]] == 0).all() and (red[[4, 9, 12, 19]] > 0).all()
    with pytest.raises(ValueError, match=r"\.mp4"):
        forecast_take_video(video, poses, camera, model_dir, tmp_path / "a.avi", progress=False)
    with pytest.raises(ValueError, match="after the take's last frame"):
        forecast_take_video(video, poses, camera, model_dir, tmp_path / "b.mp4", start=500, progress=False)
    assert not (tmp_path / "b.mp4").exists()
