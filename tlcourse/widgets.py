"""Knobs for the learner: sliders that re-run a short experiment on demand.

A :func:`control_panel` shows the controls and a *Run* button; nothing runs
until the button is pressed, so a top-to-bottom run (CI, "Run All") never
waits on a widget. The same function the button calls is plain Python, so
the lesson can call it with the defaults to show a result without clicks.

Example:
    >>> import ipywidgets as W
    >>> lr = log_slider("learning rate", 1e-3, 1e-5, 1e-1)
    >>> panel = control_panel({"lr": lr}, lambda lr: f"lr={lr:g}", display=False)
    >>> panel.run()                         # what the button does
    'lr=0.001'
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import ipywidgets as W

from .errors import CourseError
from .i18n import tr

#: CSS classes the browser test looks for: one cheap slider and the output it changes.
TEST_SLIDER_CLASS = "tl-test-slider"
TEST_OUTPUT_CLASS = "tl-test-output"


def log_slider(description: str, value: float, low: float, high: float) -> W.FloatLogSlider:
    """A slider over a log scale (learning rates, weight decay, λ)."""
    return W.FloatLogSlider(value=value, base=10, min=math.log10(low), max=math.log10(high),
                            step=0.25, description=tr(description), readout_format=".1e",
                            style={"description_width": "initial"}, continuous_update=False)


def int_slider(description: str, value: int, low: int, high: int, step: int = 1) -> W.IntSlider:
    """An integer slider (epochs, blocks to unfreeze, subset size)."""
    return W.IntSlider(value=value, min=low, max=high, step=step, description=tr(description),
                       style={"description_width": "initial"}, continuous_update=False)


class Panel(W.VBox):
    """Controls + Run button + output area; ``run()`` does what a click does."""

    def __init__(self, controls: Mapping[str, W.ValueWidget], action: Callable[..., Any],
                 button_text: str = "Run") -> None:
        self.controls, self.action = dict(controls), action
        self.button = W.Button(description=tr(button_text), button_style="primary", icon="play")
        self.output = W.Output()
        self.button.on_click(lambda _: self.run())
        super().__init__([W.HBox(list(self.controls.values()) + [self.button]) if len(self.controls) < 3
                          else W.VBox(list(self.controls.values()) + [self.button]), self.output])

    def values(self) -> dict[str, Any]:
        """The current value of every control, by keyword."""
        return {key: w.value for key, w in self.controls.items()}

    def run(self) -> Any:
        """Run the action with the current values; errors are shown, not raised, in the widget."""
        from IPython import get_ipython

        if get_ipython() is not None:  # outside a kernel, clearing prints terminal escapes
            self.output.clear_output(wait=True)
        with self.output:
            try:
                self.button.disabled = True
                return self.action(**self.values())
            except CourseError as exc:
                print(f"⚠ {exc}")
            finally:
                self.button.disabled = False


def control_panel(controls: Mapping[str, W.ValueWidget], action: Callable[..., Any],
                  button_text: str = "Run", display: bool = True) -> Panel:
    """Build (and show) a :class:`Panel`."""
    panel = Panel(controls, action, button_text)
    if display:
        from IPython.display import display as show

        show(panel)
    return panel


def live(controls: Mapping[str, W.ValueWidget], show: Callable[..., Any], display: bool = True) -> W.VBox:
    """Controls whose every change re-runs ``show`` at once (cheap previews only).

    The first control and the output carry the CSS classes the browser test
    looks for: it moves that slider and expects the output to change.

    >>> box = live({"n": int_slider("n", 2, 1, 5)}, print)  # doctest: +SKIP
    """
    out = W.interactive_output(show, dict(controls))
    first = next(iter(controls.values()))
    first.add_class(TEST_SLIDER_CLASS)
    out.add_class(TEST_OUTPUT_CLASS)
    box = W.VBox([*controls.values(), out])
    if display:
        from IPython.display import display as show_widget

        show_widget(box)
    return box
