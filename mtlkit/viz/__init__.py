"""Visualisation: plain plot functions (:mod:`mtlkit.viz.plots`) and the widgets that wire
ipywidgets controls to them (:mod:`mtlkit.viz.widgets`).

Every plot takes data and returns a :class:`matplotlib.figure.Figure`, so the same picture
is testable without a browser; a widget only adds controls and redraws. Both modules list
their public names in ``__all__``, and this package re-exports exactly those: a new plot or
widget is added to its module (and its ``__all__``) only.
"""

from __future__ import annotations

from mtlkit.viz import plots, widgets
from mtlkit.viz.plots import *  # noqa: F403
from mtlkit.viz.widgets import *  # noqa: F403

__all__ = sorted([*plots.__all__, *widgets.__all__])
