"""plotly 3D scenes: animated windows with the head camera's frustum, episode trajectories, prompt comparisons.

- ``forecast_figure``: observed / ground truth / forecast animated over the window's timeline, with a slider, a
  play button and the head camera's frustum; ``window_figure``: the same from a window dict, in the canonical or
  the world frame.
- ``trajectory_figure``: wrist and camera paths of an episode; ``prompt_comparison_figure``: one window forecast
  under several prompts.
- ``frustum_points``, ``default_intrinsics``, ``window_to_world``, ``extrinsics_to_world``: the geometry they draw.

plotly is imported inside the drawing functions, so importing ``egghand_lib.viz`` does not load it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from egghand_lib.batch import OBS_OFFSETS, TARGET_OFFSETS
from egghand_lib.geometry import camera_center, invert_rigid, to_homogeneous, transform_points
from egghand_lib.skeleton import WRIST_INDICES
from egghand_lib.viz.common import COLOR_CYCLE, COLORS, as_numpy, check_joints, skeleton_segments


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
    E = to_homogeneous(as_numpy(extrinsics).astype(np.float64))
    K = default_intrinsics() if intrinsics is None else as_numpy(intrinsics).astype(np.float64)
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
    return transform_points(invert_rigid(as_numpy(canonical_T).astype(np.float64)), as_numpy(points).astype(np.float64))


def extrinsics_to_world(extrinsics: Any, canonical_T: Any) -> np.ndarray:
    """Canonical -> camera extrinsics (..., 3, 4) -> world -> camera (..., 3, 4), via world -> canonical."""
    E = to_homogeneous(as_numpy(extrinsics).astype(np.float64))
    return (E @ as_numpy(canonical_T).astype(np.float64))[..., :3, :]


def _scatter3d(points: np.ndarray, name: str, color: str, width: float = 5, size: float = 3,
               mode: str = "lines+markers", opacity: float = 1.0, showlegend: bool = True, dash: str | None = None):
    import plotly.graph_objects as go  # heavy optional back-end, imported on use

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


def _initial_index(timeline: list[int], initial_frame: int | str | None) -> int:
    """Index in ``timeline`` of the frame a figure opens on: an offset, its name ("t+3"), or None = the last."""
    if initial_frame is None:
        return len(timeline) - 1
    offset = initial_frame
    if isinstance(initial_frame, str):
        try:
            offset = int(initial_frame.removeprefix("t"))
        except ValueError:
            raise ValueError(f"initial_frame: expected an offset such as 10 or 't+10', got {initial_frame!r}") from None
    if offset not in timeline:
        raise ValueError(f"initial_frame: offset {offset} is not in the window's timeline "
                         f"{_offset_label(timeline[0])}..{_offset_label(timeline[-1])}")
    return timeline.index(offset)


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
    initial_frame: int | str | None = None,
):
    """Animated plotly figure of one window: observed, ground-truth and forecast hands over time.

    past (20, 42, 3), past_valid (20, 42); future / forecast (10, 42, 3) with masks (forecast masks default
    to all valid); past_extrinsics (20, 3, 4), future_extrinsics (10, 3, 4) source -> camera, in the same
    frame as the joints (draws the head camera's frustum); hypotheses (K, 10, 42, 3) sampled forecasts
    drawn as wrist paths. The timeline holds the observed offsets -19..0 and the protocol's target
    offsets; animation frame k is named ``t-19`` ... ``t+10`` and shows the skeletons present at that offset.
    ``initial_frame``: the offset (an int, or its name such as "t+0") the figure opens on; default the last
    target frame, where forecast and ground truth have drifted furthest (both drawn).

    Traces, in order: 0 "observed", 1 "ground truth", 2 "forecast", 3 "camera" (the four animated ones;
    a missing input leaves its trace empty), then static wrist paths "observed wrists", "ground truth
    wrists", "forecast wrists" and one "hypothesis k" per hypothesis.
    """
    import plotly.graph_objects as go  # heavy optional back-end, imported on use

    past, past_valid = check_joints("past", past, past_valid)
    n_obs = len(past)
    offsets_target = TARGET_OFFSETS[protocol] if protocol in TARGET_OFFSETS else None
    if offsets_target is None:
        raise ValueError(f"protocol: unknown {protocol!r}; expected one of {sorted(TARGET_OFFSETS)}")
    obs_offsets = OBS_OFFSETS[-n_obs:] if n_obs <= len(OBS_OFFSETS) else tuple(range(-n_obs + 1, 1))
    fut = fvalid = pred = pvalid = None
    if future is not None:
        fut, fvalid = check_joints("future", future, future_valid)
    if forecast is not None:
        pred, pvalid = check_joints("forecast", forecast, forecast_valid)
    n_target = len(fut) if fut is not None else len(pred) if pred is not None else len(offsets_target)
    tgt_offsets = offsets_target[:n_target]
    for name, arr in (("future", fut), ("forecast", pred)):
        if arr is not None and len(arr) != n_target:
            raise ValueError(f"{name}: expected {n_target} target frames, got {len(arr)}")
    timeline = sorted(set(obs_offsets) | set(tgt_offsets))

    cams: dict[int, np.ndarray] = {}
    if future_extrinsics is not None:
        cams.update({o: e for o, e in zip(tgt_offsets, as_numpy(future_extrinsics), strict=True)})
    if past_extrinsics is not None:
        cams.update({o: e for o, e in zip(obs_offsets, as_numpy(past_extrinsics), strict=True)})

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

    start = _initial_index(timeline, initial_frame)
    # Static wrist paths give the whole window's motion at a glance while the skeletons animate.
    paths = [("observed wrists", _wrist_path(past, past_valid), COLORS["observed"], 0.6)]
    if fut is not None:
        paths.append(("ground truth wrists", _wrist_path(fut, fvalid), COLORS["ground truth"], 0.6))
    if pred is not None:
        paths.append(("forecast wrists", _wrist_path(pred, pvalid), COLORS["forecast"], 0.6))
    static = [_scatter3d(p, name, color, width=3, mode="lines", opacity=op, dash="dot")
              for name, p, color, op in paths]
    for i, h in enumerate(as_numpy(hypotheses) if hypotheses is not None else []):
        h, hv = check_joints(f"hypotheses[{i}]", h, None)
        path = _wrist_path(h, hv)
        # Each hypothesis ends in a marker on both final wrists: the endpoints' spread is the spread of the
        # futures the decoder considers. One legend entry stands for all of them.
        ends = [len(h) - 1, 2 * len(h)]
        trace = _scatter3d(path, f"hypothesis {i}", COLORS["hypothesis"], width=3, opacity=0.6,
                           showlegend=i == 0)
        trace.marker.size = [6 if k in ends else 0 for k in range(len(path))]
        static.append(trace)
        paths.append((f"hypothesis {i}", path, COLORS["hypothesis"], 0.6))
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
    past, fut = as_numpy(window["past_joints"]), as_numpy(window["future_joints"])
    pe, fe = as_numpy(window["past_extrinsics"]), as_numpy(window["future_extrinsics"])
    pred = None if forecast is None else as_numpy(forecast)
    hyp = None if hypotheses is None else as_numpy(hypotheses)
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


def mesh_figure(meshes: Mapping[str, Any] | Any, title: str | None = None, opacity: float = 1.0,
                up: Sequence[float] = (0.0, 0.0, 1.0)):
    """A rendered plotly picture of triangle meshes (e.g. ``hand_mesh`` / the GLB scene's parts), lit, with
    equal-scale axes: {name: mesh with .vertices (V, 3), .faces (F, 3) and vertex colours} -> one Mesh3d each.

    Empty meshes are left out. Each trace is coloured by its mesh's first vertex colour.
    """
    import plotly.graph_objects as go  # heavy optional back-end, imported on use

    items = meshes.items() if isinstance(meshes, Mapping) else [("mesh", meshes)]
    traces, drawn = [], []
    for name, m in items:
        v, f = np.asarray(m.vertices, dtype=np.float64), np.asarray(m.faces)
        if not len(v) or not len(f):
            continue
        colors = getattr(getattr(m, "visual", None), "vertex_colors", None)
        rgb = np.asarray(colors)[0, :3] if colors is not None and len(colors) else (128, 128, 128)
        traces.append(go.Mesh3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2], name=name,
                                color="rgb({},{},{})".format(*(int(c) for c in rgb)), opacity=opacity,
                                showlegend=True, flatshading=False, hoverinfo="name",
                                lighting=dict(ambient=0.45, diffuse=0.8, specular=0.3, roughness=0.6),
                                lightposition=dict(x=100, y=200, z=300)))
        drawn.append(v)
    if not traces:
        raise ValueError("mesh_figure: nothing to draw: every mesh is empty")
    fig = go.Figure(data=traces)
    fig.update_layout(title=title, scene=_scene_layout(drawn, up, "canonical"), height=500,
                      margin=dict(l=0, r=0, t=40 if title else 10, b=0), legend=dict(x=0, y=1))
    return fig


def trajectory_figure(joints: Any, valid: Any | None = None, extrinsics: Any | None = None,
                      intrinsics: Any | None = None, camera_every: int = 10, title: str | None = None,
                      frame_name: str = "world", up: Sequence[float] = (0.0, 0.0, 1.0),
                      frustum_depth: float = 0.15):
    """Static plotly figure of an episode: both wrists' paths, the camera path and some frustums.

    joints (F, 42, 3), valid (F, 42), extrinsics (F, 3, 4) source -> camera in the joints' frame.
    Traces: "right wrist", "left wrist", then (with extrinsics) "camera path" and "camera" frustums
    every ``camera_every`` frames, then "hands at first frame" / "hands at last frame" skeletons.
    """
    import plotly.graph_objects as go  # heavy optional back-end, imported on use

    joints, valid = check_joints("joints", joints, valid)
    traces, drawn = [], []
    for w, name, color in ((WRIST_INDICES[0], "right wrist", "#d62728"), (WRIST_INDICES[1], "left wrist", "#1f77b4")):
        p = joints[:, w].copy()
        p[~valid[:, w]] = np.nan
        traces.append(_scatter3d(p, name, color, width=3, mode="lines"))
        drawn.append(p)
    if extrinsics is not None:
        E = as_numpy(extrinsics).astype(np.float64)
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
                             up: Sequence[float] = (0.0, 0.0, 1.0),
                             objects: Mapping[str, Mapping[str, Any]] | None = None):
    """Static plotly figure: one window forecast under several prompts (language steering).

    forecasts: {prompt: (10, 42, 3) canonical forecast}. Draws the last observed skeleton, the ground
    truth final skeleton and wrist paths, and per prompt its wrist paths and final skeleton in its own
    colour. Traces: "observed (t)", "ground truth wrists", "ground truth (final)", then for each prompt
    "<prompt> wrists" and "<prompt> (final)", then one "<name>" marker per object of ``objects``
    ({name: {"position": (3,) canonical, "rgb": (3,) in [0, 1]}}, e.g. ``grounding.scene_objects``).
    """
    import plotly.graph_objects as go  # heavy optional back-end, imported on use

    past, pv = check_joints("past_joints", window["past_joints"], window.get("past_valid"))
    fut, fv = check_joints("future_joints", window["future_joints"], window.get("future_valid"))
    traces = [_scatter3d(skeleton_segments(past[-1], pv[-1]), "observed (t)", COLORS["observed"]),
              _scatter3d(_wrist_path(fut, fv), "ground truth wrists", COLORS["ground truth"], width=3, mode="lines"),
              _scatter3d(skeleton_segments(fut[-1], fv[-1]), "ground truth (final)", COLORS["ground truth"])]
    drawn = [past[-1][pv[-1]], fut[fv]]
    palette = [c for c in COLOR_CYCLE if c not in (COLORS["observed"], COLORS["ground truth"])]
    for i, (prompt, pred) in enumerate(forecasts.items()):
        p, v = check_joints(f"forecasts[{prompt!r}]", pred, None)
        color = palette[i % len(palette)]
        label = prompt if len(prompt) <= 40 else prompt[:37] + "..."
        traces.append(_scatter3d(_wrist_path(p, v), f"{label} wrists", color, width=3, mode="lines", dash="dash"))
        traces.append(_scatter3d(skeleton_segments(p[-1], v[-1]), f"{label} (final)", color))
        drawn.append(p.reshape(-1, 3))
    for name, obj in (objects or {}).items():
        xyz = np.asarray(obj["position"], float).reshape(1, 3)
        rgb = "rgb({},{},{})".format(*(int(255 * c) for c in np.asarray(obj.get("rgb", (0.5, 0.5, 0.5)))))
        traces.append(go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers+text", name=name,
                                   text=[name], textposition="top center", hoverinfo="name",
                                   marker=dict(color=rgb, size=9, symbol="diamond",
                                               line=dict(color="black", width=1))))
        drawn.append(xyz)
    fig = go.Figure(data=traces)
    fig.update_layout(title=title, scene=_scene_layout(drawn, up, "canonical"), height=550,
                      margin=dict(l=0, r=0, t=40 if title else 10, b=0), legend=dict(x=0, y=1))
    return fig

