"""Forecast frames and the mp4 writer: decodable videos with the expected frames, hands where they project."""

from __future__ import annotations

import av
import numpy as np
import pytest

from egghand_lib.viz.common import rgba
from egghand_lib.viz.overlays import project_points
from egghand_lib.viz.video import VideoWriter, draw_forecast_frame


def decode(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.mark.parametrize("size", [(48, 64), (37, 51)])  # odd sizes are padded to even ones
def test_writer_gives_a_decodable_mp4_with_every_frame(tmp_path, size):
    h, w = size
    path = tmp_path / "out" / "clip.mp4"
    with VideoWriter(path, fps=10) as writer:
        for i in range(23):
            writer.write(np.full((h, w, 3), (i * 10, 255 - i * 10, 128), np.uint8))
    assert writer.frames_written == 23
    frames = decode(path)
    assert len(frames) == 23 and frames[0].shape == (h + h % 2, w + w % 2, 3)
    assert abs(int(frames[5][h // 2, w // 2, 0]) - 50) < 8 and abs(int(frames[20][h // 2, w // 2, 0]) - 200) < 8
    with av.open(str(path)) as c:
        assert float(c.streams.video[0].average_rate) == 10
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # no temporary file left


def test_writer_leaves_nothing_on_error_and_checks_frames(tmp_path):
    path = tmp_path / "clip.mp4"
    with pytest.raises(ValueError, match="differs"):
        with VideoWriter(path) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))
            writer.write(np.zeros((16, 18, 3), np.uint8))
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"\.mp4"):
        VideoWriter(tmp_path / "clip.avi")
    with pytest.raises(ValueError, match="no frame"):
        VideoWriter(path).close()


def hands_at(right, left, z=0.5) -> np.ndarray:
    """(42, 3): every joint of the right hand at ``right`` (x, y), of the left hand at ``left``, depth z."""
    return np.array([(*right, z)] * 21 + [(*left, z)] * 21, dtype=np.float64)


def test_forecast_frame_draws_each_set_where_it_projects():
    K = np.array([[60.0, 0, 32], [0, 60.0, 32], [0, 0, 1]])
    E = np.eye(3, 4)  # camera at the world origin looking along +z: u = 120 x + 32, v = 120 y + 32 at z = 0.5
    observed = hands_at((-0.15, -0.15), (0.15, -0.15))
    valid = np.arange(42) < 21  # the left hand is not observed
    later = hands_at((-0.15, 0.15), (0.15, 0.15))
    forecast = np.stack([hands_at((0.0, -0.1 + 0.01 * k), (0.1, -0.1 + 0.02 * k)) for k in range(1, 11)])
    img = np.zeros((64, 64, 3), np.uint8)
    out = draw_forecast_frame(img, K, E, observed=(observed, valid), forecast=forecast,
                              ground_truth=(later, np.ones(42, bool)), scale=2)
    assert out.shape == (128, 128, 3) and not img.any()  # an upsampled copy; the input is untouched

    def colour_at(point):
        uv, _ = project_points(np.asarray(point, float)[None], E, K)
        u, v = np.rint(uv[0] * 2 + 0.5).astype(int)
        return tuple(out[v, u])

    red, green, blue = (tuple(rgba(c)[:3]) for c in ("#d62728", "#2ca02c", "#1f77b4"))
    assert colour_at(observed[0]) == blue and colour_at(observed[21]) == (0, 0, 0)  # invalid: not drawn
    assert colour_at(later[0]) == green and colour_at(later[21]) == green
    assert colour_at(forecast[-1, 0]) == red and colour_at(forecast[-1, 21]) == red
    assert colour_at(forecast[3, 21]) == red  # a dot of the left wrist's path
    assert colour_at((0.0, 0.2, 0.5)) == (0, 0, 0)  # nothing else
    plain = draw_forecast_frame(img, K, E)
    assert plain.shape == (64, 64, 3) and not plain.any()
