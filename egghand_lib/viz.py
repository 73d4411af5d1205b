"""Pictures of hands: 3D animations, meshes, overlays on the egocentric frames, and result plots.

Everything here takes plain arrays (numpy or torch; torch is converted) in metres, with the 42-joint
layout of ``egghand_lib.skeleton`` and a validity mask beside every set of joints. A joint whose mask is
False is never drawn, and neither is a bone touching it.

- plotly: ``forecast_figure`` (observed / ground truth / forecast animated over the window's timeline,
  with a slider, a play button and the head camera's frustum), ``window_figure`` (the same from a window
  dict, in the canonical or the world frame), ``trajectory_figure`` (wrist and camera paths of an
  episode), ``prompt_comparison_figure`` (one window forecast under several prompts).
- ipywidgets: ``forecast_explorer`` (pick a window, edit the prompt, re-run a forecast callable) built
  around the pure ``explorer_update``.
- trimesh: ``hand_mesh`` (capsule bones, sphere joints) and ``export_glb``.
- projection: ``project_points``, ``visible_in_image``, ``draw_skeleton`` (numpy raster),
  ``overlay_figure`` (matplotlib).
- matplotlib: ``horizon_error_figure``, ``per_task_bar_figure``, ``ablation_bar_figure``,
  ``metrics_table_markdown``, ``egomotion_histogram_figure``, ``training_curve_figure``, ``topdown_scatter_figure``,
  ``skeleton_snapshot_figure``; ``save_figure`` writes either kind atomically.

Extrinsics map world -> camera (``X_c = R X_w + t``, OpenCV axes: +z forward, +y down in the image);
intrinsics are the 3x3 pinhole matrix of the stored frames.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from egghand_lib.batch import OBS_OFFSETS, TARGET_OFFSETS, VIDEO_OFFSETS
from egghand_lib.geometry import camera_center, invert_rigid, to_homogeneous, transform_points
from egghand_lib.io import atomic_path
from egghand_lib.skeleton import BONES, NUM_JOINTS, WRIST_INDICES

# One colour per role, used by every figure so the pictures read the same everywhere.
COLORS: dict[str, str] = {
    "observed": "#1f77b4",  # blue
    "ground truth": "#2ca02c",  # green
    "forecast": "#d62728",  # red
    "camera": "#555555",  # grey
    "hypothesis": "#ff7f0e",  # orange
}
METHOD_COLORS: dict[str, str] = {"Static": "#7f7f7f", "CVM": "#9467bd", "EggHand": "#d62728"}
_CYCLE = ("#1f77b4", "#2ca02c", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#9467bd", "#7f7f7f")


def _np(x: Any) -> np.ndarray:
    """numpy view of an array or tensor (detached, on the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_joints(name: str, joints: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    joints = _np(joints).astype(np.float64)
    if joints.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"{name}: expected joints of shape (..., {NUM_JOINTS}, 3), got {joints.shape}")
    valid = np.ones(joints.shape[:-1], dtype=bool) if valid is None else _np(valid).astype(bool)
    if valid.shape != joints.shape[:-1]:
        raise ValueError(f"{name}: validity mask of shape {valid.shape} does not match joints {joints.shape}")
    # Non-finite coordinates cannot be drawn: treat them as missing.
    return joints, valid & np.isfinite(joints).all(-1)


def method_color(name: str, i: int = 0) -> str:
    """Colour of a method or role name (stable across figures), else the i-th colour of a cycle."""
    return COLORS.get(name) or METHOD_COLORS.get(name) or _CYCLE[i % len(_CYCLE)]


# ---------------------------------------------------------------------------------------------------
# Geometry helpers for drawing
# ---------------------------------------------------------------------------------------------------


def skeleton_segments(joints: Any, valid: Any | None = None) -> np.ndarray:
    """Polyline points of one skeleton for a plotly line trace, NaN-separated.

    joints: (42, 3); valid: (42,). Every bone whose two joints are valid becomes ``[parent, child, NaN]``;
    a valid joint none of whose bones is drawn becomes ``[joint, NaN]`` so it still shows as a marker.
    Returns (M, 3) with NaN rows as separators (plotly breaks lines at NaN / None).
    """
    joints, valid = _check_joints("joints", joints, valid)
    if joints.ndim != 2:
        raise ValueError(f"joints: expected one skeleton (42, 3), got {joints.shape}")
    gap = np.full(3, np.nan)
    rows: list[np.ndarray] = []
    drawn = np.zeros(NUM_JOINTS, dtype=bool)
    for p, c in BONES:
        if valid[p] and valid[c]:
            rows += [joints[p], joints[c], gap]
            drawn[p] = drawn[c] = True
    for j in np.flatnonzero(valid & ~drawn):
        rows += [joints[j], gap]
    return np.stack(rows) if rows else np.zeros((0, 3))


def default_intrinsics(image_size: tuple[int, int] = (224, 224), fov_deg: float = 90.0) -> np.ndarray:
    """A centred pinhole matrix (3, 3) with the given horizontal field of view; image_size = (W, H)."""
    w, h = image_size
    f = (w / 2) / np.tan(np.deg2rad(fov_deg) / 2)
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], dtype=np.float64)


def frustum_points(extrinsics: Any, intrinsics: Any | None = None, image_size: tuple[int, int] | None = None,
                   depth: float = 0.15) -> np.ndarray:
    """Line points (NaN-separated) of a camera frustum in the extrinsics' source frame.

    extrinsics: (3|4, 4) source -> camera; intrinsics (3, 3) (default: 90 degree centred camera);
    image_size (W, H) (default: twice the principal point). The pyramid has its apex at the camera
    centre and its base at ``depth`` metres along the optical axis; a short tick marks the image top.
    Returns (M, 3).
    """
    E = to_homogeneous(_np(extrinsics).astype(np.float64))
    K = default_intrinsics() if intrinsics is None else _np(intrinsics).astype(np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"intrinsics: expected (3, 3), got {K.shape}")
    w, h = image_size if image_size is not None else (2 * K[0, 2], 2 * K[1, 2])
    pix = np.array([[0, 0], [w, 0], [w, h], [0, h], [w / 2, -0.15 * h]], dtype=np.float64)
    rays = np.linalg.solve(K, np.concatenate([pix, np.ones((5, 1))], axis=1).T).T  # camera coords, z = 1
    cam_pts = rays * depth
    world = transform_points(invert_rigid(E), cam_pts)
    c = camera_center(E)
    gap = np.full(3, np.nan)
    a, b, cc, d, top = world
    rows = [c, a, gap, c, b, gap, c, cc, gap, c, d, gap, a, b, cc, d, a, gap, a, top, b, gap]
    return np.stack(rows)


def window_to_world(points: Any, canonical_T: Any) -> np.ndarray:
    """Canonical-frame points (..., P, 3) -> world, given the window's world -> canonical (4, 4)."""
    return transform_points(invert_rigid(_np(canonical_T).astype(np.float64)), _np(points).astype(np.float64))


def extrinsics_to_world(extrinsics: Any, canonical_T: Any) -> np.ndarray:
    """Canonical -> camera extrinsics (..., 3, 4) -> world -> camera (..., 3, 4), via world -> canonical."""
    E = to_homogeneous(_np(extrinsics).astype(np.float64))
    return (E @ _np(canonical_T).astype(np.float64))[..., :3, :]


# ---------------------------------------------------------------------------------------------------
# plotly: animated window
# ---------------------------------------------------------------------------------------------------


def _scatter3d(points: np.ndarray, name: str, color: str, width: float = 5, size: float = 3,
               mode: str = "lines+markers", opacity: float = 1.0, showlegend: bool = True, dash: str | None = None):
    import plotly.graph_objects as go

    pts = points if len(points) else np.full((1, 3), np.nan)
    return go.Scatter3d(
        x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode=mode, name=name, opacity=opacity, showlegend=showlegend,
        line=dict(color=color, width=width, dash=dash), marker=dict(color=color, size=size),
        connectgaps=False, hoverinfo="name",
    )


def _wrist_path(joints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Both wrists' paths over frames (T, 42, 3) as one NaN-separated polyline (invalid frames are gaps)."""
    gap = np.full((1, 3), np.nan)
    parts = []
    for w in WRIST_INDICES:
        p = joints[:, w].copy()
        p[~valid[:, w]] = np.nan
        parts += [p, gap]
    return np.concatenate(parts)


def _offset_label(offset: int) -> str:
    return f"t{offset:+d}"


def _scene_layout(points: list[np.ndarray], up: Sequence[float], frame_name: str) -> dict:
    """Equal-scale axes around every drawn point, with the camera's up vector set to the world up."""
    pts = np.concatenate([p.reshape(-1, 3) for p in points if p.size]) if points else np.zeros((1, 3))
    pts = pts[np.isfinite(pts).all(1)]
    if not len(pts):
        pts = np.zeros((1, 3))
    lo, hi = pts.min(0), pts.max(0)
    mid, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.1, 0.05)
    axes = {f"{a}axis": dict(range=[mid[i] - half, mid[i] + half], title=f"{a} (m)", autorange=False)
            for i, a in enumerate("xyz")}
    up = np.asarray(up, dtype=float)
    axes["xaxis"]["title"] = f"x (m, {frame_name})"
    return dict(**axes, aspectmode="cube", camera=dict(up=dict(x=up[0], y=up[1], z=up[2])))


def forecast_figure(
    past: Any,
    past_valid: Any | None = None,
    future: Any | None = None,
    future_valid: Any | None = None,
    forecast: Any | None = None,
    forecast_valid: Any | None = None,
    past_extrinsics: Any | None = None,
    future_extrinsics: Any | None = None,
    intrinsics: Any | None = None,
    image_size: tuple[int, int] | None = None,
    hypotheses: Any | None = None,
    protocol: str = "future",
    title: str | None = None,
    frame_name: str = "canonical",
    up: Sequence[float] = (0.0, 0.0, 1.0),
    frustum_depth: float = 0.15,
    frame_duration_ms: int = 100,
):
    """Animated plotly figure of one window: observed, ground-truth and forecast hands over time.

    past (20, 42, 3), past_valid (20, 42); future / forecast (10, 42, 3) with masks (forecast masks default
    to all valid); past_extrinsics (20, 3, 4), future_extrinsics (10, 3, 4) source -> camera, in the same
    frame as the joints (draws the head camera's frustum); hypotheses (K, 10, 42, 3) sampled forecasts
    drawn as wrist paths. The timeline holds the observed offsets -19..0 and the protocol's target
    offsets; animation frame k is named ``t-19`` ... ``t+10`` and shows the skeletons present at that offset.

    Traces, in order: 0 "observed", 1 "ground truth", 2 "forecast", 3 "camera" (the four animated ones;
    a missing input leaves its trace empty), then static wrist paths "observed wrists", "ground truth
    wrists", "forecast wrists" and one "hypothesis k" per hypothesis.
    """
    import plotly.graph_objects as go

    past, past_valid = _check_joints("past", past, past_valid)
    n_obs = len(past)
    offsets_target = TARGET_OFFSETS[protocol] if protocol in TARGET_OFFSETS else None
    if offsets_target is None:
        raise ValueError(f"protocol: unknown {protocol!r}; expected one of {sorted(TARGET_OFFSETS)}")
    obs_offsets = OBS_OFFSETS[-n_obs:] if n_obs <= len(OBS_OFFSETS) else tuple(range(-n_obs + 1, 1))
    fut = fvalid = pred = pvalid = None
    if future is not None:
        fut, fvalid = _check_joints("future", future, future_valid)
    if forecast is not None:
        pred, pvalid = _check_joints("forecast", forecast, forecast_valid)
    n_target = len(fut) if fut is not None else len(pred) if pred is not None else len(offsets_target)
    tgt_offsets = offsets_target[:n_target]
    for name, arr in (("future", fut), ("forecast", pred)):
        if arr is not None and len(arr) != n_target:
            raise ValueError(f"{name}: expected {n_target} target frames, got {len(arr)}")
    timeline = sorted(set(obs_offsets) | set(tgt_offsets))

    cams: dict[int, np.ndarray] = {}
    if future_extrinsics is not None:
        cams.update({o: e for o, e in zip(tgt_offsets, _np(future_extrinsics), strict=True)})
    if past_extrinsics is not None:
        cams.update({o: e for o, e in zip(obs_offsets, _np(past_extrinsics), strict=True)})

    empty = np.zeros((0, 3))

    def animated(offset: int) -> list[np.ndarray]:
        o = obs_offsets.index(offset) if offset in obs_offsets else None
        k = tgt_offsets.index(offset) if offset in tgt_offsets else None
        return [
            skeleton_segments(past[o], past_valid[o]) if o is not None else empty,
            skeleton_segments(fut[k], fvalid[k]) if fut is not None and k is not None else empty,
            skeleton_segments(pred[k], pvalid[k]) if pred is not None and k is not None else empty,
            frustum_points(cams[offset], intrinsics, image_size, frustum_depth) if offset in cams else empty,
        ]

    per_frame = [animated(o) for o in timeline]
    roles = ("observed", "ground truth", "forecast", "camera")

    def animated_traces(pts: list[np.ndarray]) -> list:
        return [_scatter3d(p, r, COLORS[r], width=3 if r == "camera" else 6, size=0 if r == "camera" else 3)
                for p, r in zip(pts, roles, strict=True)]

    start = timeline.index(obs_offsets[-1])  # open on the current frame t
    # Static wrist paths give the whole window's motion at a glance while the skeletons animate.
    paths = [("observed wrists", _wrist_path(past, past_valid), COLORS["observed"], 0.6)]
    if fut is not None:
        paths.append(("ground truth wrists", _wrist_path(fut, fvalid), COLORS["ground truth"], 0.6))
    if pred is not None:
        paths.append(("forecast wrists", _wrist_path(pred, pvalid), COLORS["forecast"], 0.6))
    for i, h in enumerate(_np(hypotheses) if hypotheses is not None else []):
        h, hv = _check_joints(f"hypotheses[{i}]", h, None)
        paths.append((f"hypothesis {i}", _wrist_path(h, hv), COLORS["hypothesis"], 0.4))
    static = [_scatter3d(p, name, color, width=2, mode="lines", opacity=op, dash="dot" if op > 0.5 else None)
              for name, p, color, op in paths]

    frames = [go.Frame(data=animated_traces(pts), name=_offset_label(o), traces=[0, 1, 2, 3])
              for o, pts in zip(timeline, per_frame, strict=True)]
    fig = go.Figure(data=animated_traces(per_frame[start]) + static, frames=frames)
    everything = [p for pts in per_frame for p in pts] + [p for _, p, _, _ in paths]
    steps = [dict(method="animate", label=_offset_label(o),
                  args=[[_offset_label(o)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                                  transition=dict(duration=0))]) for o in timeline]
    play = dict(label="Play", method="animate",
                args=[None, dict(frame=dict(duration=frame_duration_ms, redraw=True), fromcurrent=True,
                                 transition=dict(duration=0))])
    pause = dict(label="Pause", method="animate",
                 args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")])
    fig.update_layout(
        title=title, scene=_scene_layout(everything, up, frame_name), height=600,
        margin=dict(l=0, r=0, t=40 if title else 10, b=0), legend=dict(x=0, y=1),
        updatemenus=[dict(type="buttons", buttons=[play, pause], x=0.05, y=0.02, xanchor="left",
                          yanchor="bottom", direction="left")],
        sliders=[dict(active=start, steps=steps, x=0.2, len=0.8, y=0.02, currentvalue=dict(prefix="frame "))],
    )
    return fig


def window_figure(window: Mapping[str, Any], forecast: Any | None = None, frame: str = "canonical",
                  intrinsics: Any | None = None, image_size: tuple[int, int] | None = None,
                  hypotheses: Any | None = None, protocol: str = "future", title: str | None = None,
                  up: Sequence[float] = (0.0, 0.0, 1.0), **kwargs):
    """``forecast_figure`` of one window dict (keys of egghand_lib.batch, without the batch dimension).

    frame: "canonical" draws the window as the model sees it (origin at the first observed camera);
    "world" maps joints and cameras back with the window's ``canonical_T``. forecast (10, 42, 3) and
    hypotheses (K, 10, 42, 3) are in the canonical frame, as the model returns them.
    """
    if frame not in ("canonical", "world"):
        raise ValueError(f"frame: expected 'canonical' or 'world', got {frame!r}")
    past, fut = _np(window["past_joints"]), _np(window["future_joints"])
    pe, fe = _np(window["past_extrinsics"]), _np(window["future_extrinsics"])
    pred = None if forecast is None else _np(forecast)
    hyp = None if hypotheses is None else _np(hypotheses)
    if frame == "world":
        if "canonical_T" not in window:
            raise ValueError("window: frame='world' needs the key 'canonical_T'")
        T = window["canonical_T"]
        past, fut = window_to_world(past, T), window_to_world(fut, T)
        pe, fe = extrinsics_to_world(pe, T), extrinsics_to_world(fe, T)
        pred = None if pred is None else window_to_world(pred, T)
        hyp = None if hyp is None else window_to_world(hyp, T)
    if title is None and "task" in window:
        title = f"{window['task']}  ({frame} frame)"
    return forecast_figure(past, window.get("past_valid"), fut, window.get("future_valid"), pred, None, pe, fe,
                           intrinsics, image_size, hyp, protocol, title, frame, up, **kwargs)


def trajectory_figure(joints: Any, valid: Any | None = None, extrinsics: Any | None = None,
                      intrinsics: Any | None = None, camera_every: int = 10, title: str | None = None,
                      frame_name: str = "world", up: Sequence[float] = (0.0, 0.0, 1.0),
                      frustum_depth: float = 0.15):
    """Static plotly figure of an episode: both wrists' paths, the camera path and some frustums.

    joints (F, 42, 3), valid (F, 42), extrinsics (F, 3, 4) source -> camera in the joints' frame.
    Traces: "right wrist", "left wrist", then (with extrinsics) "camera path" and "camera" frustums
    every ``camera_every`` frames, then "hands at first frame" / "hands at last frame" skeletons.
    """
    import plotly.graph_objects as go

    joints, valid = _check_joints("joints", joints, valid)
    traces, drawn = [], []
    for w, name, color in ((WRIST_INDICES[0], "right wrist", "#d62728"), (WRIST_INDICES[1], "left wrist", "#1f77b4")):
        p = joints[:, w].copy()
        p[~valid[:, w]] = np.nan
        traces.append(_scatter3d(p, name, color, width=3, mode="lines"))
        drawn.append(p)
    if extrinsics is not None:
        E = _np(extrinsics).astype(np.float64)
        c = camera_center(E)
        traces.append(_scatter3d(c, "camera path", COLORS["camera"], width=3, mode="lines"))
        fr = [frustum_points(e, intrinsics, None, frustum_depth) for e in E[::max(1, camera_every)]]
        fr_pts = np.concatenate(fr)
        traces.append(_scatter3d(fr_pts, "camera", COLORS["camera"], width=2, size=0, opacity=0.7))
        drawn += [c, fr_pts]
    for i, name in ((0, "hands at first frame"), (len(joints) - 1, "hands at last frame")):
        seg = skeleton_segments(joints[i], valid[i])
        traces.append(_scatter3d(seg, name, "#000000" if i == 0 else "#8c564b", width=4, size=2))
        drawn.append(seg)
    fig = go.Figure(data=traces)
    fig.update_layout(title=title, scene=_scene_layout(drawn, up, frame_name), height=550,
                      margin=dict(l=0, r=0, t=40 if title else 10, b=0), legend=dict(x=0, y=1))
    return fig


def prompt_comparison_figure(window: Mapping[str, Any], forecasts: Mapping[str, Any], title: str | None = None,
                             up: Sequence[float] = (0.0, 0.0, 1.0)):
    """Static plotly figure: one window forecast under several prompts (language steering).

    forecasts: {prompt: (10, 42, 3) canonical forecast}. Draws the last observed skeleton, the ground
    truth final skeleton and wrist paths, and per prompt its wrist paths and final skeleton in its own
    colour. Traces: "observed (t)", "ground truth wrists", "ground truth (final)", then for each prompt
    "<prompt> wrists" and "<prompt> (final)".
    """
    import plotly.graph_objects as go

    past, pv = _check_joints("past_joints", window["past_joints"], window.get("past_valid"))
    fut, fv = _check_joints("future_joints", window["future_joints"], window.get("future_valid"))
    traces = [_scatter3d(skeleton_segments(past[-1], pv[-1]), "observed (t)", COLORS["observed"]),
              _scatter3d(_wrist_path(fut, fv), "ground truth wrists", COLORS["ground truth"], width=3, mode="lines"),
              _scatter3d(skeleton_segments(fut[-1], fv[-1]), "ground truth (final)", COLORS["ground truth"])]
    drawn = [past[-1][pv[-1]], fut[fv]]
    palette = [c for c in _CYCLE if c not in (COLORS["observed"], COLORS["ground truth"])]
    for i, (prompt, pred) in enumerate(forecasts.items()):
        p, v = _check_joints(f"forecasts[{prompt!r}]", pred, None)
        color = palette[i % len(palette)]
        label = prompt if len(prompt) <= 40 else prompt[:37] + "..."
        traces.append(_scatter3d(_wrist_path(p, v), f"{label} wrists", color, width=3, mode="lines", dash="dash"))
        traces.append(_scatter3d(skeleton_segments(p[-1], v[-1]), f"{label} (final)", color))
        drawn.append(p.reshape(-1, 3))
    fig = go.Figure(data=traces)
    fig.update_layout(title=title, scene=_scene_layout(drawn, up, "canonical"), height=550,
                      margin=dict(l=0, r=0, t=40 if title else 10, b=0), legend=dict(x=0, y=1))
    return fig


# ---------------------------------------------------------------------------------------------------
# ipywidgets: window picker + prompt editor around a forecast callable
# ---------------------------------------------------------------------------------------------------


def explorer_update(window: Mapping[str, Any], prompt: str | None, forecast_fn: Callable[[dict], Any],
                    frame: str = "canonical", **figure_kwargs) -> tuple[Any, dict, np.ndarray]:
    """The pure step behind ``forecast_explorer``: re-prompt a window, forecast it, draw it.

    ``forecast_fn(window) -> (10, 42, 3)`` (or (1, 10, 42, 3)) receives a shallow copy of ``window`` whose
    ``task`` is ``prompt`` (unchanged if prompt is None or blank). Returns (plotly figure, the window
    that was forecast, the forecast as numpy). The input window is not modified.
    """
    w = dict(window)
    if prompt is not None and prompt.strip():
        w["task"] = prompt.strip()
    pred = _np(forecast_fn(w))
    if pred.ndim == 4 and pred.shape[0] == 1:
        pred = pred[0]
    if pred.shape[-2:] != (NUM_JOINTS, 3) or pred.ndim != 3:
        raise ValueError(f"forecast_fn: expected a (T, {NUM_JOINTS}, 3) forecast, got shape {pred.shape}")
    return window_figure(w, pred, frame=frame, **figure_kwargs), w, pred


def figure_output(fig: Any) -> dict:
    """A plotly figure as a notebook ``display_data`` output: the plotly JSON mimetype (JupyterLab, VS Code)
    plus self-contained-enough HTML (classic Notebook, Colab; plotly.js from its CDN)."""
    import json

    return {
        "output_type": "display_data", "metadata": {},
        "data": {
            "application/vnd.plotly.v1+json": json.loads(fig.to_json()),
            "text/html": fig.to_html(full_html=False, include_plotlyjs="cdn"),
            "text/plain": f"<plotly figure: {len(fig.data)} traces, {len(fig.frames)} frames>",
        },
    }


def forecast_explorer(get_window: Callable[[int], Mapping[str, Any]], num_windows: int,
                      forecast_fn: Callable[[dict], Any], frame: str = "canonical", **figure_kwargs):
    """An ipywidgets panel: a window slider, a prompt box, a frame toggle and a Forecast button.

    Picking a window fills the prompt with its own task; pressing Forecast (or Enter in the prompt box)
    calls ``explorer_update`` and shows the figure in the panel's output area. The returned VBox has
    attributes ``index``, ``prompt``, ``frame``, ``button``, ``output`` and ``state`` (a dict with the
    last "figure", "window" and "forecast") so it can be driven from code and tests.
    """
    import ipywidgets as widgets

    if num_windows < 1:
        raise ValueError(f"num_windows: expected at least 1, got {num_windows}")
    index = widgets.IntSlider(value=0, min=0, max=num_windows - 1, description="window", continuous_update=False)
    prompt = widgets.Text(value=str(get_window(0).get("task", "")), description="prompt",
                          layout=widgets.Layout(width="80%"))
    frame_w = widgets.ToggleButtons(options=["canonical", "world"], value=frame, description="frame")
    button = widgets.Button(description="Forecast", button_style="primary")
    output = widgets.Output()
    state: dict[str, Any] = {}

    def on_index(change) -> None:
        prompt.value = str(get_window(int(change["new"])).get("task", ""))

    def on_run(*_) -> None:
        fig, w, pred = explorer_update(get_window(index.value), prompt.value, forecast_fn, frame=frame_w.value,
                                       **figure_kwargs)
        state.update(figure=fig, window=w, forecast=pred)
        # Replace the output area's content directly: no `with output:` capture, which can hang headless
        # notebook runners (nbclient) and misbehaves when a callback runs outside the cell that built the panel.
        output.outputs = (figure_output(fig),)

    index.observe(on_index, names="value")
    button.on_click(on_run)
    box = widgets.VBox([widgets.HBox([index, frame_w]), widgets.HBox([prompt, button]), output])
    box.index, box.prompt, box.frame, box.button, box.output, box.state = index, prompt, frame_w, button, output, state
    return box


# ---------------------------------------------------------------------------------------------------
# trimesh: hand meshes and GLB export
# ---------------------------------------------------------------------------------------------------


def _rgba(color: str | Sequence[int], alpha: int = 255) -> np.ndarray:
    if isinstance(color, str):
        c = color.lstrip("#")
        return np.array([int(c[i:i + 2], 16) for i in (0, 2, 4)] + [alpha], dtype=np.uint8)
    c = list(color)
    return np.array(c + [alpha] if len(c) == 3 else c, dtype=np.uint8)


def hand_mesh(joints: Any, valid: Any | None = None, color: str | Sequence[int] = COLORS["forecast"],
              joint_radius: float = 0.008, bone_radius: float = 0.005, sphere_subdivisions: int = 1,
              capsule_count: tuple[int, int] = (8, 8)):
    """A trimesh.Trimesh of one two-hand skeleton: an icosphere per valid joint, a capsule per valid bone.

    joints (42, 3) metres, valid (42,). Missing joints and bones touching them are left out. With the
    defaults a sphere has 42 vertices and a capsule 66, so the mesh has 42 * joints + 66 * bones vertices
    (see ``hand_mesh_vertex_count``). Vertex colours are ``color``.
    """
    import trimesh

    joints, valid = _check_joints("joints", joints, valid)
    if joints.ndim != 2:
        raise ValueError(f"joints: expected one skeleton (42, 3), got {joints.shape}")
    parts = []
    for j in np.flatnonzero(valid):
        s = trimesh.creation.icosphere(subdivisions=sphere_subdivisions, radius=joint_radius)
        s.apply_translation(joints[j])
        parts.append(s)
    for p, c in BONES:
        if not (valid[p] and valid[c]):
            continue
        d = joints[c] - joints[p]
        length = float(np.linalg.norm(d))
        if length < 1e-9:
            continue  # a zero-length bone has no direction; its joints' spheres already show it
        # trimesh's capsule runs along +z, centred at the origin; rotate it onto the bone, move to its middle.
        cap = trimesh.creation.capsule(height=length, radius=bone_radius, count=list(capsule_count))
        T = trimesh.geometry.align_vectors([0, 0, 1], d / length)
        T[:3, 3] = (joints[p] + joints[c]) / 2
        cap.apply_transform(T)
        parts.append(cap)
    if not parts:
        return trimesh.Trimesh()
    mesh = trimesh.util.concatenate(parts)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.tile(_rgba(color), (len(mesh.vertices), 1)))
    return mesh


def hand_mesh_vertex_count(valid: Any, sphere_subdivisions: int = 1, capsule_count: tuple[int, int] = (8, 8),
                           joints: Any | None = None) -> int:
    """Vertices of ``hand_mesh`` for a validity mask (42,), from the primitives' own vertex counts."""
    import trimesh

    valid = _np(valid).astype(bool)
    nv = len(trimesh.creation.icosphere(subdivisions=sphere_subdivisions).vertices)
    nc = len(trimesh.creation.capsule(height=1.0, radius=0.1, count=list(capsule_count)).vertices)
    bones = [(p, c) for p, c in BONES if valid[p] and valid[c]]
    if joints is not None:
        J = _np(joints)
        bones = [(p, c) for p, c in bones if np.linalg.norm(J[c] - J[p]) >= 1e-9]
    return int(valid.sum()) * nv + len(bones) * nc


def export_glb(meshes: Mapping[str, Any] | Any, path: str | os.PathLike) -> str:
    """Write one mesh or a {name: mesh} dict as a binary glTF scene (atomically). Returns the path."""
    import trimesh

    scene = trimesh.Scene()
    items = meshes.items() if isinstance(meshes, Mapping) else [("hands", meshes)]
    for name, m in items:
        if len(m.vertices):
            scene.add_geometry(m, geom_name=name, node_name=name)
    if not scene.geometry:
        raise ValueError(f"export_glb: nothing to write to {path}: every mesh is empty")
    data = scene.export(file_type="glb")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return str(path)


# ---------------------------------------------------------------------------------------------------
# Projection onto the egocentric frames
# ---------------------------------------------------------------------------------------------------


def project_points(points: Any, extrinsics: Any, intrinsics: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection of points (..., P, 3) with extrinsics (..., 3|4, 4) source -> camera, K (3, 3).

    Returns (uv (..., P, 2) pixel coordinates, depth (..., P) along the optical axis). Pixel (0, 0) is the
    centre of the top-left pixel's corner convention of K (OpenCV): u = fx x / z + cx, v = fy y / z + cy.
    Points at depth <= 0 get NaN pixels.
    """
    X = _np(points).astype(np.float64)
    E = _np(extrinsics).astype(np.float64)
    K = _np(intrinsics).astype(np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"intrinsics: expected (3, 3), got {K.shape}")
    Xc = transform_points(E, X)
    z = Xc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uvw = Xc @ K.T
        uv = uvw[..., :2] / uvw[..., 2:3]
    uv[z <= 0] = np.nan
    return uv, z


def visible_in_image(uv: np.ndarray, depth: np.ndarray, image_size: tuple[int, int],
                     valid: Any | None = None) -> np.ndarray:
    """Mask (..., P) of points in front of the camera, inside a (W, H) image, and valid."""
    w, h = image_size
    inside = (depth > 0) & np.isfinite(uv).all(-1) & (uv[..., 0] >= 0) & (uv[..., 0] < w)
    inside &= (uv[..., 1] >= 0) & (uv[..., 1] < h)
    return inside if valid is None else inside & _np(valid).astype(bool)


def draw_skeleton(image: Any, uv: Any, mask: Any, color: str | Sequence[int] = COLORS["forecast"],
                  radius: int = 2, draw_bones: bool = True) -> np.ndarray:
    """Rasterise one skeleton onto a copy of an RGB image (H, W, 3) uint8 with numpy only.

    uv (42, 2) pixels, mask (42,) which joints to draw (e.g. ``visible_in_image``). Joints become discs of
    ``radius`` pixels; bones with both joints drawn become 1-pixel lines. Nothing else is touched.
    """
    img = np.array(_np(image), dtype=np.uint8, copy=True)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image: expected (H, W, 3), got {img.shape}")
    uv, mask = _np(uv).astype(np.float64), _np(mask).astype(bool)
    h, w = img.shape[:2]
    rgb = _rgba(color)[:3]
    mask = mask & np.isfinite(uv).all(-1)
    if draw_bones:
        for p, c in BONES:
            if mask[p] and mask[c]:
                n = int(np.ceil(np.abs(uv[c] - uv[p]).max())) + 1
                s = np.linspace(0, 1, n)[:, None]
                pts = np.rint(uv[p] + s * (uv[c] - uv[p])).astype(int)
                ok = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
                img[pts[ok, 1], pts[ok, 0]] = rgb
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disc = (xx**2 + yy**2) <= radius**2
    dx, dy = xx[disc], yy[disc]
    for j in np.flatnonzero(mask):
        cx, cy = np.rint(uv[j]).astype(int)
        px, py = cx + dx, cy + dy
        ok = (px >= 0) & (px < w) & (py >= 0) & (py < h)
        img[py[ok], px[ok]] = rgb
    return img


def _hwc(frame: Any) -> np.ndarray:
    f = _np(frame)
    if f.ndim == 3 and f.shape[0] == 3 and f.shape[2] != 3:
        f = f.transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
    return f


def overlay_figure(frames: Any, joint_sets: Mapping[str, tuple[Any, Any]], extrinsics: Any, intrinsics: Any,
                   titles: Sequence[str] | None = None, joint_size: float = 12.0):
    """Matplotlib figure: each frame with every joint set projected onto it.

    frames (N, H, W, 3) or (N, 3, H, W) uint8; joint_sets {name: (joints (N, 42, 3), valid (N, 42))} in
    the extrinsics' source frame; extrinsics (N, 3, 4); intrinsics (3, 3) of the frames. Joints that
    are invalid, behind the camera or outside the image are not drawn. Each axes gets one scatter per
    joint set (label = name, colour ``method_color(name)``) and one line per drawn bone.
    """
    import matplotlib.pyplot as plt

    frames_np = [_hwc(f) for f in frames]
    E = _np(extrinsics)
    n = len(frames_np)
    if len(E) != n:
        raise ValueError(f"extrinsics: expected {n} cameras for {n} frames, got {len(E)}")
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    for i, (ax, img) in enumerate(zip(axes[0], frames_np, strict=True)):
        h, w = img.shape[:2]
        ax.imshow(img)
        for k, (name, (joints, valid)) in enumerate(joint_sets.items()):
            J, V = _check_joints(name, joints, valid)
            uv, z = project_points(J[i], E[i], intrinsics)
            m = visible_in_image(uv, z, (w, h), V[i])
            color = method_color(name, k)
            for p, c in BONES:
                if m[p] and m[c]:
                    ax.plot(uv[[p, c], 0], uv[[p, c], 1], color=color, linewidth=1.2)
            ax.scatter(uv[m, 0], uv[m, 1], s=joint_size, color=color, label=name, zorder=3)
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    axes[0, 0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    return fig


def window_overlay_figure(window: Mapping[str, Any], intrinsics: Any, forecast: Any | None = None,
                          show_future_on_last: bool = True):
    """``overlay_figure`` of a window's 4 video frames (offsets -18, -12, -6, 0) with its observed joints.

    With ``show_future_on_last`` the final frame also carries the ground truth and the forecast (if
    given) of the last target frame seen from the current camera: where the hands will be, drawn on
    where they are now.
    """
    past, pv = _np(window["past_joints"]), _np(window["past_valid"])
    idx = [OBS_OFFSETS.index(o) for o in VIDEO_OFFSETS]
    sets: dict[str, tuple[Any, Any]] = {"observed": (past[idx], pv[idx])}
    if show_future_on_last:
        last = np.zeros_like(past[idx])
        last_valid = np.zeros_like(pv[idx])
        last[-1], last_valid[-1] = _np(window["future_joints"])[-1], _np(window["future_valid"])[-1]
        sets["ground truth"] = (last, last_valid)
        if forecast is not None:
            f = np.zeros_like(last)
            f[-1] = _np(forecast)[-1]
            fv = np.zeros_like(last_valid)
            fv[-1] = True
            sets["forecast"] = (f, fv)
    titles = [f"t{o:+d}" + (" (+ final target)" if o == 0 and show_future_on_last else "") for o in VIDEO_OFFSETS]
    return overlay_figure(_np(window["frames"]), sets, _np(window["past_extrinsics"])[idx], intrinsics, titles)


# ---------------------------------------------------------------------------------------------------
# matplotlib: result plots and tables
# ---------------------------------------------------------------------------------------------------


def horizon_error_figure(curves: Mapping[str, Any], offsets: Sequence[int] | None = None, fps: float = 10.0,
                         ylabel: str = "error (m)", title: str | None = None, ax: Any | None = None):
    """Error vs forecast horizon: one line per method. curves {name: (T,) errors in metres}.

    offsets: the target offsets in frames (default 1..T); the x axis shows seconds = offset / fps.
    """
    import matplotlib.pyplot as plt

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 3.6))
    for i, (name, vals) in enumerate(curves.items()):
        y = _np(vals).astype(float).ravel()
        x = np.asarray(offsets if offsets is not None else np.arange(1, len(y) + 1), dtype=float) / fps
        if len(x) != len(y):
            raise ValueError(f"curves[{name!r}]: {len(y)} values for {len(x)} offsets")
        ax.plot(x, y, marker="o", markersize=3, label=name, color=method_color(name, i))
    return _finish_line_plot(fig, ax, "forecast horizon (s)", ylabel, title)


def _grouped_bars(ax, groups: Sequence[str], series: Mapping[str, Sequence[float]]) -> None:
    n = max(1, len(series))
    width = 0.8 / n
    x = np.arange(len(groups))
    for i, (name, vals) in enumerate(series.items()):
        ax.bar(x + (i - (n - 1) / 2) * width, np.asarray(vals, dtype=float), width, label=name,
               color=method_color(name, i))
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=30 if max((len(g) for g in groups), default=0) > 8 else 0, ha="right"
                       if max((len(g) for g in groups), default=0) > 8 else "center")
    ax.grid(axis="y", alpha=0.3)


def _rows(table: Any) -> dict[str, dict[str, float]]:
    """{row: {column: value}} from a dict of dicts or a pandas DataFrame (rows = index)."""
    if hasattr(table, "to_dict") and hasattr(table, "index"):
        return {str(k): {str(c): v for c, v in row.items()} for k, row in table.to_dict(orient="index").items()}
    return {str(k): dict(v) for k, v in table.items()}


def per_task_bar_figure(table: Any, metric: str = "ADE (m)", title: str | None = None, ax: Any | None = None):
    """Grouped bars of one metric per task: table {task: {method: value}} (or a DataFrame, tasks as rows)."""
    import matplotlib.pyplot as plt

    rows = _rows(table)
    methods = list(dict.fromkeys(m for r in rows.values() for m in r))
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(max(5.0, 1.1 * len(rows) + 2), 3.8))
    _grouped_bars(ax, list(rows), {m: [rows[t].get(m, np.nan) for t in rows] for m in methods})
    ax.set_ylabel(metric)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def ablation_bar_figure(rows: Any, metrics: Sequence[str] = ("ade", "fde", "mpjpe", "mpjpe_f"),
                        title: str | None = None, ax: Any | None = None):
    """Grouped bars: one group per metric, one bar per variant. rows {variant: {metric: value}}."""
    import matplotlib.pyplot as plt

    rows = _rows(rows)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.5, 3.8))
    labels = [m.upper().replace("_F", "-F") for m in metrics]
    _grouped_bars(ax, labels, {v: [r.get(m, np.nan) for m in metrics] for v, r in rows.items()})
    ax.set_ylabel("error (m)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def metrics_table_markdown(rows: Any, metrics: Sequence[str] = ("ade", "fde", "mpjpe", "mpjpe_f"),
                           extra: Mapping[str, Mapping[str, str]] | None = None, digits: int = 3,
                           bold_best: bool = True, first_header: str = "method") -> str:
    """A markdown table laid out like the paper's: rows {name: {metric: value}}, lower is better.

    extra {name: {column: text}} adds columns before the metrics (e.g. the paper's loss check marks).
    The best value of each metric is bold; missing values print as "-".
    """
    rows = _rows(rows)
    extra_cols = list(dict.fromkeys(c for e in (extra or {}).values() for c in e))
    header = [first_header] + extra_cols + [m.upper().replace("_F", "-F") for m in metrics]
    best = {}
    for m in metrics:
        vals = [r[m] for r in rows.values() if m in r and r[m] is not None and np.isfinite(r[m])]
        best[m] = min(vals) if vals else None
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for name, r in rows.items():
        cells = [name] + [str((extra or {}).get(name, {}).get(c, "")) for c in extra_cols]
        for m in metrics:
            v = r.get(m)
            if v is None or not np.isfinite(v):
                cells.append("-")
                continue
            s = f"{v:.{digits}f}"
            cells.append(f"**{s}**" if bold_best and best[m] is not None and v == best[m] else s)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def egomotion_histogram_figure(scores: Any, fraction: float = 0.1, bins: int = 30, title: str | None = None,
                                ax: Any | None = None):
    """Histogram of window egomotion scores with the top-``fraction`` threshold marked (SPEC section 6).

    The threshold is the smallest score selected by ``egomotion.top_fraction_mask``; the bars at or
    above it are orange. NaN scores are left out.
    """
    import matplotlib.pyplot as plt

    from egghand_lib.egomotion import top_fraction_mask

    s = _np(scores).astype(float).ravel()
    top = np.asarray(top_fraction_mask(s, fraction), dtype=bool)
    finite = s[np.isfinite(s)]
    thr = float(s[top].min())
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 3.4))
    edges = np.histogram_bin_edges(finite, bins=bins)
    ax.hist(finite[finite < thr], bins=edges, color=COLORS["observed"], label=f"rest ({(~top).sum()})")
    ax.hist(finite[finite >= thr], bins=edges, color=COLORS["hypothesis"],
            label=f"top {round(100 * fraction)}% ({top.sum()})")
    ax.axvline(thr, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("egomotion score (mean ||E_t - E_t-1||_F)")
    ax.set_ylabel("windows")
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def training_curve_figure(history: Mapping[str, Any], keys: Sequence[str] = ("loss", "val_loss"),
                          title: str | None = None, ax: Any | None = None):
    """Training curves: history {"step": (S,), key: (S,)} (e.g. a run's metrics.csv columns); NaNs are skipped."""
    import matplotlib.pyplot as plt

    if "step" not in history:
        raise ValueError("history: needs a 'step' column")
    step = _np(history["step"]).astype(float)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 3.4))
    for i, k in enumerate(k for k in keys if k in history):
        y = _np(history[k]).astype(float)
        ok = np.isfinite(y) & np.isfinite(step)
        ax.plot(step[ok], y[ok], marker="o", markersize=3, label=k, color=_CYCLE[i % len(_CYCLE)])
    return _finish_line_plot(fig, ax, "optimizer step", "loss", title)


def _finish_line_plot(fig, ax, xlabel: str, ylabel: str, title: str | None):
    """Labels, grid, legend and title of a one-axes line plot; returns the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def topdown_scatter_figure(panels: Mapping[str, Any], axes: tuple[int, int] = (0, 1), title: str | None = None):
    """Side-by-side 2D scatters of point sets {panel title: (N, 3)} on two coordinate axes (default x, y:
    a view from above for z up), equal aspect, with the origin marked."""
    import matplotlib.pyplot as plt

    n = len(panels)
    fig, axs = plt.subplots(1, n, figsize=(4.2 * n, 4.0), squeeze=False)
    names = "xyz"
    for k, (ax, (name, pts)) in enumerate(zip(axs[0], panels.items(), strict=True)):
        P = _np(pts).astype(float).reshape(-1, 3)
        ax.scatter(P[:, axes[0]], P[:, axes[1]], s=6, alpha=0.6, color=_CYCLE[k % len(_CYCLE)])
        ax.scatter([0], [0], marker="+", s=80, color="k", label="origin")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel(f"{names[axes[0]]} (m)")
        ax.set_ylabel(f"{names[axes[1]]} (m)")
        ax.set_title(f"{name} (spread {np.nanstd(P[:, list(axes)], axis=0).mean():.2f} m)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def skeleton_snapshot_figure(joint_sets: Mapping[str, tuple[Any, Any]], title: str | None = None,
                             elev: float = 20.0, azim: float = -120.0, ax: Any | None = None):
    """Static matplotlib 3D view of several skeletons {name: (joints (42, 3), valid (42,))} (no browser needed)."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig = plt.figure(figsize=(5, 5))
        ax = fig.add_subplot(projection="3d")
    fig = ax.figure
    pts = []
    for i, (name, (joints, valid)) in enumerate(joint_sets.items()):
        seg = skeleton_segments(joints, valid)
        color = method_color(name, i)
        ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=color, label=name, linewidth=1.5)
        ax.scatter(seg[:, 0], seg[:, 1], seg[:, 2], color=color, s=6)
        pts.append(seg[np.isfinite(seg).all(1)])
    allp = np.concatenate(pts) if pts else np.zeros((1, 3))
    if len(allp):
        mid, half = (allp.min(0) + allp.max(0)) / 2, max(float(np.ptp(allp, 0).max()) / 2, 0.05)
        ax.set_xlim(mid[0] - half, mid[0] + half)
        ax.set_ylim(mid[1] - half, mid[1] + half)
        ax.set_zlim(mid[2] - half, mid[2] + half)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")
    ax.view_init(elev=elev, azim=azim)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> str:
    """Save a matplotlib figure (PNG/PDF/SVG by suffix) or a plotly figure (HTML) atomically."""
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        if hasattr(fig, "savefig"):
            fig.savefig(tmp, dpi=dpi, format=os.path.splitext(path)[1].lstrip(".") or "png", bbox_inches="tight")
        elif hasattr(fig, "write_html"):
            fig.write_html(tmp, include_plotlyjs="cdn")
        else:
            raise ValueError(f"save_figure: cannot save a {type(fig).__name__} to {path}")
    return path

