"""Visualisation: plain plot functions (:mod:`mtlkit.viz.plots`) and the widgets that wire
ipywidgets controls to them (:mod:`mtlkit.viz.widgets`).

Every plot takes data and returns a :class:`matplotlib.figure.Figure`, so the same picture
is testable without a browser; a widget only adds controls and redraws.
"""

from __future__ import annotations

from mtlkit.viz.plots import (
    MASKED_COLOR,
    OKABE_ITO,
    conflict_pairs,
    history_tasks,
    plot_attention,
    plot_attention_heads,
    plot_gate_weights,
    plot_gradient_conflict,
    plot_pareto,
    plot_task_losses,
    plot_task_weights,
    plot_validation_metrics,
    token_labels,
)
from mtlkit.viz.widgets import (
    LiveLossPlot,
    PlotWidget,
    attention_widget,
    conflict_widget,
    figure_to_png,
    gate_widget,
    live_loss_callback,
    loss_widget,
    pareto_widget,
)

__all__ = [
    "MASKED_COLOR",
    "OKABE_ITO",
    "LiveLossPlot",
    "PlotWidget",
    "attention_widget",
    "conflict_pairs",
    "conflict_widget",
    "figure_to_png",
    "gate_widget",
    "history_tasks",
    "live_loss_callback",
    "loss_widget",
    "pareto_widget",
    "plot_attention",
    "plot_attention_heads",
    "plot_gate_weights",
    "plot_gradient_conflict",
    "plot_pareto",
    "plot_task_losses",
    "plot_task_weights",
    "plot_validation_metrics",
    "token_labels",
]
