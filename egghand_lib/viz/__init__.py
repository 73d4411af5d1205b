"""Pictures of hands: 3D animations, meshes, overlays on the egocentric frames, and result plots.

Everything here takes plain arrays (numpy or torch; torch is converted) in metres, with the 42-joint
layout of ``egghand_lib.skeleton`` and a validity mask beside every set of joints. A joint whose mask is
False is never drawn, and neither is a bone touching it. One module per back-end, all re-exported here
(``from egghand_lib import viz; viz.window_figure(...)``):

- ``scene3d`` (plotly): ``forecast_figure`` (observed / ground truth / forecast animated over the window's
  timeline, with a slider, a play button and the head camera's frustum), ``window_figure`` (the same from a
  window dict, in the canonical or the world frame), ``trajectory_figure`` (wrist and camera paths of an
  episode), ``prompt_comparison_figure`` (one window forecast under several prompts), ``mesh_figure`` (a
  rendered picture of meshes).
- ``widgets`` (ipywidgets): ``forecast_explorer`` (pick a window, edit the prompt, re-run a forecast callable)
  built around the pure ``explorer_update``.
- ``meshes`` (trimesh): ``hand_mesh`` (capsule bones, sphere joints) and ``export_glb``.
- ``overlays``: ``project_points``, ``visible_in_image``, ``draw_skeleton`` (numpy raster),
  ``overlay_figure`` (matplotlib).
- ``plots`` (matplotlib): ``horizon_error_figure``, ``horizon_error_panels``, ``per_task_bar_figure``,
  ``ablation_bar_figure``, ``change_bars_figure``, ``camera_motion_figure``, ``hypotheses_figure``,
  ``metrics_table_markdown``, ``egomotion_histogram_figure``, ``training_curve_figure``,
  ``topdown_scatter_figure``, ``skeleton_snapshot_figure``; ``save_figure`` writes either kind atomically.
- ``video``: ``draw_forecast_frame`` (observed / forecast / ground-truth hands on one video frame) and
  ``VideoWriter`` (H.264 mp4 through PyAV, written atomically).
- ``common``: the colours (``COLORS``, ``METHOD_COLORS``, ``method_color``) and ``skeleton_segments``.

The back-ends are imported by the functions that draw, so importing this package loads none of them.
Extrinsics map world -> camera (``X_c = R X_w + t``, OpenCV axes: +z forward, +y down in the image);
intrinsics are the 3x3 pinhole matrix of the stored frames.
"""

from egghand_lib.viz.common import COLORS, METHOD_COLORS, method_color, skeleton_segments
from egghand_lib.viz.meshes import export_glb, hand_mesh, hand_mesh_vertex_count
from egghand_lib.viz.overlays import (
    draw_skeleton,
    overlay_figure,
    project_points,
    visible_in_image,
    window_overlay_figure,
)
from egghand_lib.viz.plots import (
    ablation_bar_figure,
    camera_motion_figure,
    change_bars_figure,
    egomotion_histogram_figure,
    horizon_error_figure,
    horizon_error_panels,
    hypotheses_figure,
    metrics_table_markdown,
    per_task_bar_figure,
    save_figure,
    skeleton_snapshot_figure,
    topdown_scatter_figure,
    training_curve_figure,
)
from egghand_lib.viz.scene3d import (
    default_intrinsics,
    extrinsics_to_world,
    forecast_figure,
    frustum_points,
    mesh_figure,
    prompt_comparison_figure,
    trajectory_figure,
    window_figure,
    window_to_world,
)
from egghand_lib.viz.video import VideoWriter, draw_forecast_frame
from egghand_lib.viz.widgets import explorer_update, figure_output, forecast_explorer

__all__ = [
    "COLORS", "METHOD_COLORS", "VideoWriter", "ablation_bar_figure", "camera_motion_figure", "change_bars_figure",
    "default_intrinsics",
    "draw_forecast_frame", "draw_skeleton", "egomotion_histogram_figure", "explorer_update", "export_glb",
    "extrinsics_to_world", "figure_output", "forecast_explorer", "forecast_figure", "frustum_points", "hand_mesh",
    "hand_mesh_vertex_count", "horizon_error_figure", "horizon_error_panels", "hypotheses_figure", "mesh_figure",
    "method_color", "metrics_table_markdown", "overlay_figure", "per_task_bar_figure", "project_points",
    "prompt_comparison_figure", "save_figure", "skeleton_segments", "skeleton_snapshot_figure",
    "topdown_scatter_figure", "training_curve_figure", "trajectory_figure", "visible_in_image", "window_figure",
    "window_overlay_figure", "window_to_world",
]
