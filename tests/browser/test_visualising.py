"""08_visualising.ipynb in JupyterLab: Run All, then use its widgets as a learner does.

``tests/test_viz.py`` checks in plain Python that a widget redraws when a control's value
changes. This module checks the part only a browser can: the notebook runs from the Run menu
without an error output, every ``mtlkit.viz`` widget shows its figure, and clicking a toggle
button, picking a dropdown option or pressing an arrow key on a slider reaches the kernel and
comes back as a different image (the ``<img>``'s PNG data changes) with no error shown.

The widgets are found by the CSS classes :class:`mtlkit.viz.PlotWidget` sets
(``mtlkit-<kind>-widget`` on the box, ``mtlkit-figure`` on its Output) and their controls by
the ``description`` label beside each control, which is what a learner reads too.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

NOTEBOOK = "08_visualising.ipynb"
KINDS = ("attention", "loss", "gate")  # the widgets the notebook must show (and these tests use)
PNG_PREFIX = "data:image/png;base64,"
TITLE_BAND = 0.1  # the top share of a figure holding its title, which names the controls' values
REDRAW_TIMEOUT_S = 60  # a redraw is a kernel round trip plus a matplotlib figure, on a busy CI machine


@pytest.fixture(scope="module")
def visualising_run(lab):
    yield lab.run_notebook(NOTEBOOK)
    lab.server.shutdown_kernels()


@dataclass
class WidgetView:
    """One ``mtlkit.viz`` widget in the page: its controls by label, and its current figure."""

    lab: Any
    element: Any
    kind: str
    story: list[str] = field(default_factory=list)  # what each action changed, for the test's report

    def figure(self) -> str:
        """The ``src`` of the figure's image: the PNG itself, base64-encoded."""
        images = self.lab.css(".mtlkit-figure img", self.element)
        return images[0].get_attribute("src") if images else ""

    def control(self, label: str, css_class: str) -> Any:
        """The control of class ``css_class`` (e.g. ``widget-dropdown``) whose label reads ``label``."""
        for control in self.lab.css(f".{css_class}", self.element):
            labels = self.lab.css(".widget-label", control)
            if labels and labels[0].text.strip() == label:
                return control
        raise AssertionError(f"the {self.kind} widget has no {css_class} labelled {label!r}")

    def has_control(self, label: str, css_class: str) -> bool:
        try:
            self.control(label, css_class)
        except AssertionError:
            return False
        return True

    def buttons(self, label: str) -> dict[str, Any]:
        """The buttons of the ToggleButtons labelled ``label``, by their text."""
        return {b.text.strip(): b for b in self.lab.css("button", self.control(label, "widget-toggle-buttons"))}

    def active(self, label: str) -> str:
        """The text of the pressed button of the ToggleButtons labelled ``label``."""
        return next(text for text, b in self.buttons(label).items() if "mod-active" in b.get_attribute("class"))

    def click(self, label: str, option: str) -> None:
        buttons = self.buttons(label)
        assert option in buttons, f"{self.kind} widget: {label!r} offers {list(buttons)}, not {option!r}"
        buttons[option].click()

    def select(self, label: str, index: int) -> str:
        """Pick option ``index`` of the Dropdown labelled ``label`` (as a click in its list does); its text."""
        from selenium.webdriver.support.ui import Select

        select = Select(self.lab.css("select", self.control(label, "widget-dropdown"))[0])
        assert len(select.options) > index, f"{self.kind} widget: {label!r} has only {len(select.options)} options"
        select.select_by_index(index)
        return select.options[index].text

    def press(self, label: str, key: str) -> Any:
        """Focus the handle of the slider labelled ``label`` and press ``key``; the slider element."""
        slider = self.control(label, "widget-slider")
        handle = self.lab.css(".noUi-handle", slider)[0]
        handle.click()
        handle.send_keys(key)
        return slider

    def readout(self, slider: Any) -> str:
        return self.lab.css(".widget-readout", slider)[0].text.strip()

    def wait_for_new_figure(self, before: str, what: str) -> str:
        """Wait until the figure differs from ``before`` (the kernel redrew it); the new figure."""
        after = self.lab.wait_for(lambda: (src := self.figure()) != before and src.startswith(PNG_PREFIX) and src,
                                  REDRAW_TIMEOUT_S, f"the {self.kind} figure to change after {what}")
        assert not self.errors(), f"{self.kind} widget shows an error after {what}: {self.errors()}"
        changed = changed_pixels(before, after)
        # A new title alone would mean the control reached the kernel but not the plot.
        assert changed > 0, f"{self.kind} widget: after {what} only the figure's title changed"
        self.story.append(f"{what}: {100 * changed:.0f}% of the plot's pixels changed")
        return after

    def errors(self) -> list[str]:
        return self.lab.error_texts(self.element)

    def save(self, path: Path) -> None:
        """A PNG of just this widget (controls and figure)."""
        self.lab.scroll_into_view(self.element)
        self.element.screenshot(str(path))


def changed_pixels(before: str, after: str) -> float:
    """The share of pixels below the title band that differ between two ``data:image/png`` figures."""
    import numpy as np
    from matplotlib import image

    a, b = (image.imread(io.BytesIO(base64.b64decode(src[len(PNG_PREFIX):])), format="png") for src in (before, after))
    if a.shape != b.shape:
        return 1.0
    body = slice(int(TITLE_BAND * a.shape[0]), None)
    return float((np.abs(a[body] - b[body]).max(axis=-1) > 0).mean())


def widget(lab: Any, kind: str) -> WidgetView:
    """The first widget of ``kind`` in the notebook, scrolled into view."""
    found = lab.css(f".mtlkit-{kind}-widget")
    assert found, f"{NOTEBOOK} shows no {kind} widget (no element with class mtlkit-{kind}-widget)"
    view = WidgetView(lab, found[0], kind)
    lab.scroll_into_view(view.element)
    return view


def assert_page_clean(lab: Any) -> None:
    """No error output anywhere in the notebook (kernel errors, tracebacks, broken widgets)."""
    state = lab.state()
    errors = state["errors"] + lab.error_texts()
    assert not errors, "error output in the notebook:\n" + "\n---\n".join(errors)
    assert state["kernel"] == "idle", f"the kernel is {state['kernel']}, not idle"


# --------------------------------------------------------------------------- tests
def test_run_all_shows_every_widget_without_errors(lab, visualising_run):
    state = visualising_run.state()
    assert state["executed"] == state["code_cells"] > 0
    assert_page_clean(lab)

    views = lab.css(".mtlkit-widget")
    kinds = {cls[len("mtlkit-"):-len("-widget")] for view in views for cls in view.get_attribute("class").split()
             if cls.startswith("mtlkit-") and cls.endswith("-widget") and cls != "mtlkit-widget"}
    assert set(KINDS) <= kinds, f"{NOTEBOOK} shows widgets {sorted(kinds)}, missing {sorted(set(KINDS) - kinds)}"
    for view in views:  # every widget drew its default view
        src = WidgetView(lab, view, "?").figure()
        assert src.startswith(PNG_PREFIX), f"a widget ({view.get_attribute('class')}) shows no figure"
    lab.scroll_into_view(widget(lab, "attention").element)
    print(f"widgets: {sorted(kinds)} ({len(views)} in all)\n{lab.timing_report()}")


def test_attention_widget_redraws_for_another_head_layer_and_sample(lab, visualising_run, tmp_path):
    from selenium.webdriver.common.keys import Keys

    visualising_run.state()
    view = widget(lab, "attention")
    view.save(tmp_path / "attention-before.png")

    figure = view.figure()
    assert view.active("head") == "0"
    view.click("head", "1")
    figure = view.wait_for_new_figure(figure, "clicking head 1")
    assert view.active("head") == "1"

    layers = [o.text for o in view.lab.css("option", view.control("layer", "widget-dropdown"))]
    if len(layers) > 1:  # a model with one layer has nothing else to pick
        figure = view.wait_for_new_figure(figure, f"picking {view.select('layer', 1)!r}")

    slider = view.press("sample", Keys.ARROW_RIGHT)
    view.wait_for_new_figure(figure, "pressing → on the sample slider")
    assert view.readout(slider) == "1"
    assert_page_clean(lab)
    view.save(tmp_path / "attention-after.png")
    print("attention: " + "; ".join(view.story))


def test_loss_widget_redraws_for_log_scale_and_one_task(lab, visualising_run, tmp_path):
    visualising_run.state()
    view = widget(lab, "loss")
    view.save(tmp_path / "loss-before.png")

    first = view.figure()
    assert view.active("y scale") == "linear"
    view.click("y scale", "log")
    after_scale = view.wait_for_new_figure(first, "clicking y scale: log")
    assert view.active("y scale") == "log"

    task = view.select("task", 1)  # option 0 is "all"; 1 is the first task alone
    view.wait_for_new_figure(after_scale, f"picking task {task!r}")
    assert_page_clean(lab)
    view.save(tmp_path / "loss-after.png")
    print("loss: " + "; ".join(view.story))


def test_gate_widget_redraws_for_one_sample_the_next_and_another_model(lab, visualising_run, tmp_path):
    from selenium.webdriver.common.keys import Keys

    visualising_run.state()
    view = widget(lab, "gate")
    view.save(tmp_path / "gate-before.png")

    first = view.figure()
    assert view.active("show") == "batch mean"
    view.click("show", "one sample")
    after_show = view.wait_for_new_figure(first, "clicking show: one sample")

    slider = view.control("sample", "widget-slider")
    figure = after_show
    if float(view.lab.css(".noUi-handle", slider)[0].get_attribute("aria-valuemax")) >= 1:
        view.press("sample", Keys.ARROW_RIGHT)  # the slider was enabled by "one sample"
        figure = view.wait_for_new_figure(figure, "pressing → on the sample slider")
        assert view.readout(slider) == "1"
    if view.has_control("model", "widget-dropdown"):  # several models side by side: show the next one
        view.wait_for_new_figure(figure, f"picking model {view.select('model', 1)!r}")
    assert_page_clean(lab)
    view.save(tmp_path / "gate-after.png")
    print("gate: " + "; ".join(view.story))
