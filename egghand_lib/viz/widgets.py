"""ipywidgets: a window picker and prompt editor around a forecast callable (``forecast_explorer``).

``explorer_update`` is the pure step behind the panel (re-prompt, forecast, draw), testable without a notebook.
ipywidgets is imported inside ``forecast_explorer``, so importing ``egghand_lib.viz`` does not load it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from egghand_lib.skeleton import NUM_JOINTS
from egghand_lib.viz.common import as_numpy
from egghand_lib.viz.scene3d import window_figure


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
    pred = as_numpy(forecast_fn(w))
    if pred.ndim == 4 and pred.shape[0] == 1:
        pred = pred[0]
    if pred.shape[-2:] != (NUM_JOINTS, 3) or pred.ndim != 3:
        raise ValueError(f"forecast_fn: expected a (T, {NUM_JOINTS}, 3) forecast, got shape {pred.shape}")
    return window_figure(w, pred, frame=frame, **figure_kwargs), w, pred


def figure_output(fig: Any) -> dict:
    """A plotly figure as a notebook ``display_data`` output: the plotly JSON mimetype (JupyterLab, VS Code)
    plus self-contained-enough HTML (classic Notebook, Colab; plotly.js from its CDN)."""
    return {
        "output_type": "display_data", "metadata": {},
        "data": {
            "application/vnd.plotly.v1+json": json.loads(fig.to_json()),
            "text/html": fig.to_html(full_html=False, include_plotlyjs="cdn"),
            "text/plain": f"<plotly figure: {len(fig.data)} traces, {len(fig.frames)} frames>",
        },
    }


def forecast_explorer(get_window: Callable[[int], Mapping[str, Any]], num_windows: int,
                      forecast_fn: Callable[[dict], Any], frame: str = "canonical", draw: bool = True,
                      **figure_kwargs):
    """An ipywidgets panel: a window slider, a prompt box, a frame toggle and a Forecast button.

    The panel redraws (``explorer_update``, the figure shown in its output area) when the slider moves (the
    prompt box then shows the new window's own task), when Enter is pressed in the prompt box (the box
    reports its value on Enter or when it loses focus, not on every key), when the frame toggle changes,
    and when Forecast is pressed; with ``draw`` the first window is drawn at once. The returned VBox has
    attributes ``index``, ``prompt``, ``frame``, ``button``, ``output`` and ``state`` (a dict with the
    last "figure", "window", "forecast" and the number of "draws") so it can be driven from code and tests.
    """
    import ipywidgets as widgets  # heavy optional back-end, imported on use

    if num_windows < 1:
        raise ValueError(f"num_windows: expected at least 1, got {num_windows}")
    index = widgets.IntSlider(value=0, min=0, max=num_windows - 1, description="window", continuous_update=False)
    prompt = widgets.Text(value=str(get_window(0).get("task", "")), description="prompt", continuous_update=False,
                          layout=widgets.Layout(width="80%"))
    frame_w = widgets.ToggleButtons(options=["canonical", "world"], value=frame, description="frame")
    button = widgets.Button(description="Forecast", button_style="primary")
    output = widgets.Output()
    state: dict[str, Any] = {"draws": 0}

    def redraw(*_) -> None:
        fig, w, pred = explorer_update(get_window(index.value), prompt.value, forecast_fn, frame=frame_w.value,
                                       **figure_kwargs)
        state.update(figure=fig, window=w, forecast=pred, draws=state["draws"] + 1)
        # Replace the output area's content directly: no `with output:` capture, which can hang headless
        # notebook runners (nbclient) and misbehaves when a callback runs outside the cell that built the panel.
        output.outputs = (figure_output(fig),)

    def on_index(change) -> None:
        task = str(get_window(int(change["new"])).get("task", ""))
        if prompt.value != task:
            prompt.value = task  # the prompt's observer redraws
        else:
            redraw()

    index.observe(on_index, names="value")
    prompt.observe(redraw, names="value")
    frame_w.observe(redraw, names="value")
    button.on_click(redraw)
    box = widgets.VBox([widgets.HBox([index, frame_w]), widgets.HBox([prompt, button]), output])
    box.index, box.prompt, box.frame, box.button, box.output, box.state = index, prompt, frame_w, button, output, state
    if draw:
        redraw()
    return box
