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
    assert ui.state["draws"] == 1 and seen[-1] == "pick up the red cup"  # the first window is drawn at once
    assert len(ui.output.outputs) == 1
    ui.button.click()
    assert ui.state["draws"] == 2 and len(ui.output.outputs) == 1  # the figure replaced the one before


def test_explorer_redraws_on_slider_and_on_enter():
    windows = [window(seed=0), window(seed=1), window(seed=2)]
    windows[1]["task"] = "wipe the table"
    seen = []

    def forecast_fn(w):
        seen.append(w["task"])
        return w["future_joints"] + 0.01 * len(seen)

    ui = viz.forecast_explorer(lambda i: windows[i], 3, forecast_fn, draw=False)
    assert ui.state["draws"] == 0 and ui.output.outputs == ()
    # The prompt box reports its value on Enter (or on losing focus), not on every key press.
    assert ui.prompt.continuous_update is False
    # Moving the slider redraws once, for the new window under its own prompt.
    ui.index.value = 1
    assert seen == ["wipe the table"] and ui.state["draws"] == 1
    assert ui.prompt.value == "wipe the table"
    title = ui.output.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]
    assert title.startswith("wipe the table")
    # Window 2 has the same task as window 1 (the prompt does not change): the slider still redraws once.
    windows[2]["task"] = "wipe the table"
    ui.index.value = 2
    assert seen == ["wipe the table"] * 2 and ui.state["draws"] == 2
    assert np.allclose(ui.state["forecast"], windows[2]["future_joints"].numpy() + 0.02)
    # Enter in the prompt box: the value arrives once, and the panel redraws once with the edited prompt.
    ui.prompt.value = "twist the lid"
    assert seen[-1] == "twist the lid" and ui.state["draws"] == 3 and ui.state["window"]["task"] == "twist the lid"
    title = ui.output.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]
    assert title.startswith("twist the lid") and len(ui.output.outputs) == 1
    # The frame toggle redraws too, in the chosen frame, keeping the edited prompt.
    ui.frame.value = "world"
    assert ui.state["draws"] == 4 and seen[-1] == "twist the lid" and "world" in ui.state["figure"].layout.title.text
    data = ui.output.outputs[0]["data"]
    assert len(data["application/vnd.plotly.v1+json"]["frames"]) == 30 and "<div" in data["text/html"]
