"""egghand_lib.viz.widgets: the explorer's pure step and the ipywidgets panel wired around it."""

from __future__ import annotations

import numpy as np
import pytest

from egghand_lib import viz
from tests.fixtures.hand_scenes import window


def test_explorer_update_and_widget_wiring():
    windows = [window(seed=0), window(seed=1)]
    windows[1]["task"] = "wipe the table"
    seen = []

    def forecast_fn(w):
        seen.append(w["task"])
        return w["future_joints"][None] + 0.03  # (1, 10, 42, 3) is accepted

    fig, used, pred = viz.explorer_update(windows[0], "pour water into the bowl", forecast_fn)
    assert seen == ["pour water into the bowl"] and used["task"] == "pour water into the bowl"
    assert windows[0]["task"] == "pick up the red cup"  # not mutated
    assert pred.shape == (10, 42, 3) and fig.data[2].name == "forecast"
    assert "pour water" in fig.layout.title.text
    with pytest.raises(ValueError, match="forecast_fn"):
        viz.explorer_update(windows[0], None, lambda w: np.zeros((42, 3)))

    ui = viz.forecast_explorer(lambda i: windows[i], 2, forecast_fn)
    assert ui.prompt.value == "pick up the red cup"
    ui.index.value = 1
    assert ui.prompt.value == "wipe the table"
    ui.prompt.value = "twist the lid"
    ui.frame.value = "world"
    ui.button.click()
    assert seen[-1] == "twist the lid" and "world" in ui.state["figure"].layout.title.text
    assert len(ui.output.outputs) == 1  # the figure replaced whatever the panel showed before
    data = ui.output.outputs[0]["data"]
    assert data["application/vnd.plotly.v1+json"]["layout"]["title"]["text"].startswith("twist the lid")
    assert len(data["application/vnd.plotly.v1+json"]["frames"]) == 30 and "<div" in data["text/html"]
    ui.button.click()
    assert len(ui.output.outputs) == 1
