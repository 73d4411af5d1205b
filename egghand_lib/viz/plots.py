"""matplotlib result plots and tables: error vs horizon, per-task and ablation bars, the paper-style markdown
table, egomotion histogram, training curves, top-down scatters, a static 3D skeleton view; ``save_figure``
writes a matplotlib or plotly figure atomically.

matplotlib is imported inside the figure functions, so importing ``egghand_lib.viz`` does not load it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from egghand_lib.egomotion import top_fraction_mask
from egghand_lib.geometry import camera_center, camera_forward
from egghand_lib.io import atomic_path
from egghand_lib.skeleton import WRIST_INDICES
from egghand_lib.viz.common import COLOR_CYCLE, COLORS, as_numpy, method_color, skeleton_segments


def horizon_error_figure(curves: Mapping[str, Any], offsets: Sequence[int] | None = None, fps: float = 10.0,
                         ylabel: str = "error (m)", title: str | None = None, ax: Any | None = None):
    """Error vs forecast horizon: one line per method. curves {name: (T,) errors in metres}.

    offsets: the target offsets in frames (default 1..T); the x axis shows seconds = offset / fps.
    """
    import matplotlib.pyplot as plt  # heavy optional back-end, imported on use

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 3.6))
    for i, (name, vals) in enumerate(curves.items()):
        y = as_numpy(vals).astype(float).ravel()
        x = np.asarray(offsets if offsets is not None else np.arange(1, len(y) + 1), dtype=float) / fps
        if len(x) != len(y):
            raise ValueError(f"curves[{name!r}]: {len(y)} values for {len(x)} offsets")
        ax.plot(x, y, marker="o", markersize=3, label=name, color=method_color(name, i))
    return _finish_line_plot(fig, ax, "forecast horizon (s)", ylabel, title)


def horizon_error_panels(panels: Mapping[str, Mapping[str, Any]], fps: float = 10.0, title: str | None = None,
                         sharey: bool = False):
    """Side-by-side error-vs-horizon plots sharing the horizon axis: panels {ylabel: {method: (T,) errors}}
    (e.g. {"wrist error, ADE (m)": ..., "hand shape, MPJPE (m)": ...}); each method keeps its colour."""
    import matplotlib.pyplot as plt  # heavy optional back-end, imported on use

    n = len(panels)
    fig, axs = plt.subplots(1, n, figsize=(5.0 * n, 3.6), sharex=True, sharey=sharey, squeeze=False)
    for ax, (ylabel, curves) in zip(axs[0], panels.items(), strict=True):
        horizon_error_figure(curves, fps=fps, ylabel=ylabel, ax=ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def camera_motion_figure(windows: Mapping[str, Mapping[str, Any]], up: Sequence[float] = (0.0, 0.0, 1.0)):
    """What the egomotion score measures, for a few windows on shared axes (docs/conventions.md, "Egomotion").

    windows {name: window dict with past_extrinsics (20, 3, 4) and future_extrinsics (T, 3, 4), canonical frame}.
    Four panels sharing the frame-offset axis, one line per window: the camera's heading and pitch (degrees; the
    heading is 0 at the first observed frame by construction of the canonical frame), how far its centre has moved
    from there (cm), and the per-step change ||E_t - E_t-1||_F of its 3x4 matrix, whose mean (dashed) is the
    window's score when all its frames are real.
    """
    import matplotlib.pyplot as plt  # heavy optional back-end, imported on use

    up = np.asarray(up, dtype=float) / np.linalg.norm(up)
    fig, axs = plt.subplots(1, 4, figsize=(16, 3.4), sharex=True)
    for k, (name, w) in enumerate(windows.items()):
        n_obs = len(as_numpy(w["past_extrinsics"]))
        E = np.concatenate([as_numpy(w["past_extrinsics"]), as_numpy(w["future_extrinsics"])]).astype(np.float64)
        offsets = np.arange(len(E)) - (n_obs - 1)
        c, f = camera_center(E), camera_forward(E)
        pitch = np.degrees(np.arcsin(np.clip(f @ up, -1, 1)))
        heading = np.degrees(np.unwrap(np.arctan2(f[:, 1], f[:, 0])))  # z up: the canonical frame's x-y plane
        moved = 100 * np.linalg.norm(c - c[0], axis=1)
        step = np.linalg.norm((E[1:] - E[:-1]).reshape(len(E) - 1, -1), axis=1)
        color = COLOR_CYCLE[k % len(COLOR_CYCLE)]
        axs[0].plot(offsets, heading, color=color, label=name)
        axs[1].plot(offsets, pitch, color=color)
        axs[2].plot(offsets, moved, color=color)
        axs[3].plot(offsets[1:], step, color=color)
        axs[3].axhline(float(step.mean()), color=color, linestyle="--", linewidth=1)
    for ax, label in zip(axs, ("heading (deg)", "pitch (deg)", "camera moved since t-19 (cm)",
                               "||E_t - E_t-1||_F (dashed: mean)"), strict=True):
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("frame offset")
        ax.axvline(0, color="k", linewidth=0.6, alpha=0.5)  # the current frame t
        ax.grid(alpha=0.3)
    axs[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def hypotheses_figure(window: Mapping[str, Any], forecast: Any, hypotheses: Any, title: str | None = None):
    """Sampled forecasts as a spread. Panels 1-2: each wrist's path seen from above (x, y; equal scale), observed
    (blue), ground truth (green), the deterministic forecast (red, dashed), every hypothesis (orange, thin) with its
    final position marked. Panel 3: where the hypotheses' wrists end, relative to their mean, in millimetres (right
    wrist o, left wrist ^; the forecast's own endpoints x), so a spread of millimetres stays visible beside paths
    of decimetres. forecast (T, 42, 3), hypotheses (K, T, 42, 3), canonical metres."""
    import matplotlib.pyplot as plt  # heavy optional back-end, imported on use

    past, pv = as_numpy(window["past_joints"]).astype(float), as_numpy(window["past_valid"]).astype(bool)
    fut, fv = as_numpy(window["future_joints"]).astype(float), as_numpy(window["future_valid"]).astype(bool)
    hyp = as_numpy(hypotheses).astype(float)
    pred = as_numpy(forecast).astype(float)
    fig, axs = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, w, side in zip(axs[:2], WRIST_INDICES, ("right", "left"), strict=True):
        _path2d(ax, past[:, w], pv[:, w], 0, 1, color=COLORS["observed"], lw=2, label="observed")
        _path2d(ax, fut[:, w], fv[:, w], 0, 1, color=COLORS["ground truth"], lw=2, label="ground truth")
        for k, h in enumerate(hyp):
            _path2d(ax, h[:, w], None, 0, 1, color=COLORS["hypothesis"], lw=0.8, alpha=0.7,
                    label=f"{len(hyp)} hypotheses" if k == 0 else None)
        ax.scatter(hyp[:, -1, w, 0], hyp[:, -1, w, 1], color=COLORS["hypothesis"], s=14, zorder=3)
        _path2d(ax, pred[:, w], None, 0, 1, color=COLORS["forecast"], lw=2, linestyle="--", label="forecast")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("x (m, canonical)")
        ax.set_ylabel("y (m)")
        ax.set_title(f"{side} wrist, seen from above", fontsize=10)
        ax.grid(alpha=0.3)
    axs[0].legend(fontsize=8)
    ax = axs[2]
    for w, side, marker in ((WRIST_INDICES[0], "right", "o"), (WRIST_INDICES[1], "left", "^")):
        ends = hyp[:, -1, w, :2]
        rel = 1000 * (ends - ends.mean(0))
        ax.scatter(rel[:, 0], rel[:, 1], marker=marker, color=COLORS["hypothesis"], label=f"{side} wrist")
        own = 1000 * (pred[-1, w, :2] - ends.mean(0))
        ax.scatter([own[0]], [own[1]], marker="x", s=60, color=COLORS["forecast"],
                   label="forecast" if side == "right" else None)
    ax.scatter([0], [0], marker="+", s=80, color="k", label="mean")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (mm, from the mean)")
    ax.set_ylabel("y (mm)")
    ax.set_title("where the hypotheses end (final frame)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _path2d(ax, points: np.ndarray, valid: np.ndarray | None, a: int, b: int, **kwargs) -> None:
    """One joint's path (T, 3) projected on coordinates (a, b); invalid frames are gaps."""
    q = points if valid is None else np.where(valid[:, None], points, np.nan)
    ax.plot(q[:, a], q[:, b], **kwargs)


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
    import matplotlib.pyplot as plt  # heavy optional back-end, imported on use

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
    import matplotlib.pyplot as plt  # heavy optional back-end, imported on use

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


def change_bars_figure(panels: Mapping[str, Mapping[str, float]], ylabel: str = "change (%)",
                       title: str | None = None):
    """Side-by-side bar panels of relative changes sharing the y axis: panels {title: {row: percent}} (e.g. the
    paper's and this run's "ADE vs clean"), each bar labelled with its value, a line at 0."""
    import matplotlib.pyplot as plt  # heavy optional back-end, imported on use

    n = len(panels)
    fig, axs = plt.subplots(1, n, figsize=(4.6 * n, 3.8), sharey=True, squeeze=False)
    for ax, (name, rows) in zip(axs[0], panels.items(), strict=True):
        labels = list(rows)
        vals = np.array([rows[r] for r in labels], dtype=float)
        bars = ax.bar(np.arange(len(labels)), vals, color=[method_color(r, i) for i, r in enumerate(labels)])
        ax.bar_label(bars, labels=[f"{v:+.1f}%" for v in vals], fontsize=8)
        ax.axhline(0, color="k", linewidth=0.8)
        ax.set_xticks(np.arange(len(labels)))
        ax.set_xticklabels([r if len(r) <= 14 else r.replace(" + ", " +\n") for r in labels], fontsize=8)
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axs[0][0].set_ylabel(ylabel)
    if title:
        fig.suptitle(title)
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
    """Histogram of window egomotion scores with the top-``fraction`` threshold marked.

    The threshold is the smallest score selected by ``egomotion.top_fraction_mask``; the bars at or
    above it are orange. NaN scores are left out.
    """
    import matplotlib.pyplot as plt  # heavy optional back-end, imported on use

    s = as_numpy(scores).astype(float).ravel()
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
    import matplotlib.pyplot as plt  # heavy optional back-end, imported on use

    if "step" not in history:
        raise ValueError("history: needs a 'step' column")
    step = as_numpy(history["step"]).astype(float)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 3.4))
    for i, k in enumerate(k for k in keys if k in history):
        y = as_numpy(history[k]).astype(float)
        ok = np.isfinite(y) & np.isfinite(step)
        ax.plot(step[ok], y[ok], marker="o", markersize=3, label=k, color=COLOR_CYCLE[i % len(COLOR_CYCLE)])
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


def topdown_scatter_figure(panels: Mapping[str, Any], axes: tuple[int, int] = (0, 1), title: str | None = None,
                           share: bool = False):
    """Side-by-side 2D scatters of point sets {panel title: (N, 3)} on two coordinate axes (default x, y:
    a view from above for z up), equal aspect, with the origin marked; ``share``: the same axes in every panel."""
    import matplotlib.pyplot as plt  # heavy optional back-end, imported on use

    n = len(panels)
    fig, axs = plt.subplots(1, n, figsize=(4.2 * n, 4.0), squeeze=False, sharex=share, sharey=share)
    names = "xyz"
    for k, (ax, (name, pts)) in enumerate(zip(axs[0], panels.items(), strict=True)):
        P = as_numpy(pts).astype(float).reshape(-1, 3)
        ax.scatter(P[:, axes[0]], P[:, axes[1]], s=6, alpha=0.6, color=COLOR_CYCLE[k % len(COLOR_CYCLE)])
        ax.scatter([0], [0], marker="+", s=80, color="k", label="origin")
        ax.set_aspect("equal", adjustable="box" if share else "datalim")
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
    import matplotlib.pyplot as plt  # heavy optional back-end, imported on use

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

