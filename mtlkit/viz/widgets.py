"""Interactive views: ipywidgets controls wired to the plain plot functions of :mod:`mtlkit.viz.plots`.

A widget holds no plotting code of its own. Each is a :class:`PlotWidget` — a ``VBox`` of a
row of standard controls (``Dropdown``, ``IntSlider``, ``FloatSlider``, ``ToggleButtons``,
each with a ``description``) above an ``ipywidgets.Output`` — that calls one plot
function with the controls' values and shows the figure as a PNG image in the Output.

The default view is drawn once when the widget is built, so a notebook run without a
browser (papermill) still stores a figure in the widget's state. Every change of a control
redraws. The PNG replaces the Output's ``outputs`` in one assignment (what
``Output.append_display_data`` does, minus the append): the frontend swaps the image
without flicker, it works from callbacks and training loops alike, and — because it does
not depend on the kernel's output capture — the same redraw can be checked in plain Python
(see :attr:`PlotWidget.png`). Figures are not pyplot figures, so nothing needs closing.

CSS classes ``mtlkit-widget``, ``mtlkit-<kind>-widget`` (on the box) and ``mtlkit-figure``
(on the Output) let a browser test find them.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from mtlkit.checks import check_int, check_number
from mtlkit.viz import plots

__all__ = [
    "PlotWidget",
    "figure_to_png",
    "attention_widget",
    "gate_widget",
    "loss_widget",
    "conflict_widget",
    "pareto_widget",
    "fusion_widget",
    "LiveLossPlot",
    "live_loss_callback",
]

_STYLE = {"description_width": "initial"}
_DPI = 90


def figure_to_png(fig: Figure, dpi: int | None = None) -> bytes:
    """The figure rendered as PNG bytes (Agg, whatever the session's backend); 90 dpi by default."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI if dpi is None else dpi)
    return buffer.getvalue()


def _show_png(output: widgets.Output, png: bytes, text: str) -> None:
    """Replace everything in ``output`` by one PNG image (base64, as Jupyter stores images)."""
    output.outputs = (
        {
            "output_type": "display_data",
            "data": {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": text},
            "metadata": {},
        },
    )


def _show_error(output: widgets.Output, error: Exception) -> None:
    output.outputs = (
        {"output_type": "stream", "name": "stderr", "text": f"{type(error).__name__}: {error}\n"},
    )


def _png_of(output: widgets.Output) -> bytes | None:
    for item in output.outputs:
        data = item.get("data", {})
        if "image/png" in data:
            return base64.b64decode(data["image/png"])
    return None


class PlotWidget(widgets.VBox):
    """Controls above an Output showing ``draw(**values of the controls)``.

    Attributes:
        controls: name → control widget (the keyword each value is passed as).
        output: the ``ipywidgets.Output`` holding the current figure as a PNG.
        n_draws: how many figures were drawn (1 after construction).
        last_error: the exception of the last failed redraw, shown in the Output (None when
            the last redraw succeeded).

    Args:
        draw: returns a :class:`~matplotlib.figure.Figure` for the controls' values.
        controls: name → control; every change of a ``value`` redraws.
        kind: short name for the CSS class ``mtlkit-<kind>-widget``.
        on_change: called with (name, new value) before the redraw, e.g. to enable,
            disable or re-range other controls.
    """

    def __init__(self, draw: Callable[..., Figure], controls: Mapping[str, widgets.ValueWidget], *,
                 kind: str, on_change: Callable[[str, Any], None] | None = None) -> None:
        output = widgets.Output(layout=widgets.Layout(min_height="120px"))
        row = widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([row, output])
        self.add_class("mtlkit-widget")
        self.add_class(f"mtlkit-{kind}-widget")
        output.add_class("mtlkit-figure")
        self.controls = dict(controls)
        self.output = output
        self.n_draws = 0
        self.last_error: Exception | None = None
        self._draw = draw
        self._on_change = on_change
        self._adjusting = False  # True while on_change adjusts other controls: one redraw, not several
        for name, control in self.controls.items():
            control.observe(lambda change, name=name: self._changed(name, change["new"]), names="value")
        self.redraw(raise_errors=True)  # the default view; bad inputs fail here, loudly

    @property
    def values(self) -> dict[str, Any]:
        """The controls' current values."""
        return {name: control.value for name, control in self.controls.items()}

    @property
    def png(self) -> bytes | None:
        """The PNG bytes currently shown (None when the Output holds an error)."""
        return _png_of(self.output)

    def redraw(self, raise_errors: bool = False) -> None:
        """Draw the figure for the current values into the Output.

        A failure inside a callback would otherwise vanish into the kernel log, so it is
        shown in the Output instead (and kept in ``last_error``) unless ``raise_errors``.
        """
        try:
            fig = self._draw(**self.values)
            png = figure_to_png(fig)
        except Exception as error:
            if raise_errors:
                raise
            self.last_error = error
            _show_error(self.output, error)
            return
        self.last_error = None
        self.n_draws += 1
        _show_png(self.output, png, repr(fig))

    def _changed(self, name: str, value: Any) -> None:
        if self._adjusting:
            return
        if self._on_change is not None:
            self._adjusting = True
            try:
                self._on_change(name, value)
            finally:
                self._adjusting = False
        self.redraw()


# --------------------------------------------------------------------------- the widgets
def attention_widget(weights: Any, labels: Sequence[str] | Sequence[Sequence[str]] | None = None, *,
                     key_padding_mask: Any = None) -> PlotWidget:
    """Attention heatmaps with controls for the sample (user), the layer and the head.

    Controls: ``sample`` (IntSlider), ``layer`` (Dropdown), ``head`` (ToggleButtons "0",
    "1", …, and "all" for every head of the layer side by side) and ``padding``
    (ToggleButtons "grey" / "hide": grey out or drop the padded positions). Draws
    :func:`~mtlkit.viz.plots.plot_attention` / :func:`~mtlkit.viz.plots.plot_attention_heads`.

    Args:
        weights: list over layers of ``(B, H, L, S)`` weights (``model.attention_weights()``).
        labels: S key labels or one list per sample (:func:`~mtlkit.viz.plots.token_labels`).
        key_padding_mask: ``(B, S)`` or ``(B, S − 1)`` bool, True = padding (torch's
            convention); inferred from zero-weight keys when None.
    """
    layers = plots._attention_layers(weights)
    n_samples, n_heads = layers[0].shape[:2]
    # Validate labels and mask once, for sample 0, before building anything.
    plots._sample_labels(labels, 0, n_samples, layers[0].shape[-1])
    plots._padding(layers[0], key_padding_mask, 0)
    controls = {
        "sample": widgets.IntSlider(value=0, min=0, max=n_samples - 1, description="sample",
                                    continuous_update=False, style=_STYLE),
        "layer": widgets.Dropdown(options=[(f"layer {i}", i) for i in range(len(layers))], value=0,
                                  description="layer", style=_STYLE),
        "head": widgets.ToggleButtons(options=[(str(h), h) for h in range(n_heads)] + [("all", "all")], value=0,
                                      description="head", style={**_STYLE, "button_width": "auto"}),
        "padding": widgets.ToggleButtons(options=["grey", "hide"], value="grey", description="padding",
                                         style={**_STYLE, "button_width": "auto"}),
    }

    def draw(sample: int, layer: int, head: int | str, padding: str) -> Figure:
        hide = padding == "hide"
        if head == "all":
            return plots.plot_attention_heads(layers, layer, sample, labels=labels, key_padding_mask=key_padding_mask,
                                              hide_padding=hide)
        return plots.plot_attention(layers, layer=layer, head=head, sample=sample, labels=labels,
                                    key_padding_mask=key_padding_mask, hide_padding=hide)

    return PlotWidget(draw, controls, kind="attention")


def _gate_models(gates: Any) -> dict[str, Mapping[str, Any]]:
    """{model: {task: (B, E)}} from one model's gates or a dict of several models' gates."""
    if not isinstance(gates, Mapping) or not gates:
        raise ValueError(f"gates must be a non-empty dict task -> (B, n_experts), or model -> such a dict, "
                         f"got {gates!r:.80}")
    nested = [isinstance(v, Mapping) for v in gates.values()]
    if all(nested):
        return {str(name): g for name, g in gates.items()}
    if any(nested):
        raise ValueError("gates must map every key to a tensor (one model) or every key to a dict (several models)")
    return {"model": gates}


def gate_widget(gates: Mapping[str, Any], *, expert_labels: Sequence[str] | Mapping[str, Sequence[str]] | None = None
                ) -> PlotWidget:
    """MMoE/PLE gate weights (task × expert), averaged over the batch or for one sample.

    Controls: ``model`` (Dropdown; only with several models), ``show`` (ToggleButtons
    "batch mean" / "one sample") and ``sample`` (IntSlider, active for "one sample"). Draws
    :func:`~mtlkit.viz.plots.plot_gate_weights`.

    Args:
        gates: one model's ``{task: (B, n_experts)}`` (``model.gate_weights()``), or
            ``{name: such a dict}`` to compare models or PLE levels, e.g.
            ``{"MMoE": mmoe.gate_weights(), "PLE level 0": ple.gate_weights(0)}``.
        expert_labels: expert names, one list for all models or ``{name: list}``.
    """
    models = _gate_models(gates)
    sizes = {}
    for name, model_gates in models.items():
        labels = expert_labels.get(name) if isinstance(expert_labels, Mapping) else expert_labels
        plots.plot_gate_weights(model_gates, expert_labels=labels)  # validates; the figure is discarded
        sizes[name] = plots._gate_matrix(model_gates, None)[2]
    first = next(iter(models))
    controls: dict[str, widgets.ValueWidget] = {}
    if len(models) > 1:
        controls["model"] = widgets.Dropdown(options=list(models), value=first, description="model", style=_STYLE)
    controls["show"] = widgets.ToggleButtons(options=["batch mean", "one sample"], value="batch mean",
                                             description="show", style={**_STYLE, "button_width": "auto"})
    controls["sample"] = widgets.IntSlider(value=0, min=0, max=sizes[first] - 1, description="sample",
                                           continuous_update=False, disabled=True, style=_STYLE)

    def on_change(name: str, value: Any) -> None:
        if name == "show":
            controls["sample"].disabled = value != "one sample"
        elif name == "model":
            slider = controls["sample"]
            slider.value = min(slider.value, sizes[value] - 1)
            slider.max = sizes[value] - 1

    def draw(show: str, sample: int, model: str = first) -> Figure:
        labels = expert_labels.get(model) if isinstance(expert_labels, Mapping) else expert_labels
        fig = plots.plot_gate_weights(models[model], sample=sample if show == "one sample" else None,
                                      expert_labels=labels)
        if len(models) > 1:
            fig.suptitle(model)
        return fig

    return PlotWidget(draw, controls, kind="gate", on_change=on_change)


def loss_widget(history: Any, *, tasks: Sequence[str] | None = None) -> PlotWidget:
    """Per-task training curves: losses (or task weights) over the steps.

    Controls: ``task`` (Dropdown: "all" or one task), ``curve`` (ToggleButtons "loss" /
    "weight"; only when the history has ``weight/<task>`` columns), ``smoothing``
    (FloatSlider, EMA factor) and ``y scale`` (ToggleButtons "linear" / "log"). Draws
    :func:`~mtlkit.viz.plots.plot_task_losses` / :func:`~mtlkit.viz.plots.plot_task_weights`.

    Args:
        history: the step history (``trainer.history`` or ``trainer.history.steps``).
        tasks: the tasks to offer (default: every ``loss/<task>`` column).
    """
    frame = plots._frame(history)
    available = plots.history_tasks(frame, "loss")
    if not available:
        raise ValueError(f"history must have 'loss/<task>' columns, got columns {list(frame.columns)}")
    offered = plots._pick(tasks, available, "tasks")
    controls: dict[str, widgets.ValueWidget] = {
        "task": widgets.Dropdown(options=["all", *offered], value="all", description="task", style=_STYLE),
    }
    if plots.history_tasks(frame, "weight"):
        controls["curve"] = widgets.ToggleButtons(options=["loss", "weight"], value="loss", description="curve",
                                                  style={**_STYLE, "button_width": "auto"})
    controls["smoothing"] = widgets.FloatSlider(value=0.0, min=0.0, max=0.95, step=0.05, description="smoothing",
                                                continuous_update=False, style=_STYLE)
    controls["scale"] = widgets.ToggleButtons(options=["linear", "log"], value="linear", description="y scale",
                                              style={**_STYLE, "button_width": "auto"})

    def draw(task: str, smoothing: float, scale: str, curve: str = "loss") -> Figure:
        plot = plots.plot_task_weights if curve == "weight" else plots.plot_task_losses
        return plot(frame, tasks=offered if task == "all" else task, smoothing=smoothing, log_scale=scale == "log")

    return PlotWidget(draw, controls, kind="loss")


def conflict_widget(history: Any) -> PlotWidget:
    """Gradient cosine between tasks over the steps (negative = conflict).

    Controls: ``pair`` (Dropdown: "all pairs" or one "a vs b") and ``smoothing``
    (FloatSlider). Draws :func:`~mtlkit.viz.plots.plot_gradient_conflict`; the history needs
    ``grad_cos/<a>/<b>`` columns (``TrainConfig(record_gradients=True)``).
    """
    frame = plots._frame(history)
    plots.plot_gradient_conflict(frame)  # validates
    pairs = [f"{a}/{b}" for a, b in plots.conflict_pairs(frame)]
    controls = {
        "pair": widgets.Dropdown(options=[("all pairs", "all")] + [(p.replace("/", " vs "), p) for p in pairs],
                                 value="all", description="pair", style=_STYLE),
        "smoothing": widgets.FloatSlider(value=0.0, min=0.0, max=0.95, step=0.05, description="smoothing",
                                         continuous_update=False, style=_STYLE),
    }

    def draw(pair: str, smoothing: float) -> Figure:
        return plots.plot_gradient_conflict(frame, pairs=None if pair == "all" else [pair], smoothing=smoothing)

    return PlotWidget(draw, controls, kind="conflict")


def pareto_widget(results: Mapping[str, Any], front: Any, *, task_names: Sequence[str] = ("f1", "f2")
                  ) -> PlotWidget:
    """Weighting strategies' paths on the toy problem's Pareto front, one at a time or all.

    Controls: ``strategy`` (Dropdown: "all" or one, drawn boldly over the others) and
    ``step`` (IntSlider: how far along the paths). Draws :func:`~mtlkit.viz.plots.plot_pareto`.

    Args:
        results: strategy → ``(trajectory, losses)`` from :func:`mtlkit.toy.run_strategy`,
            or strategy → ``(steps + 1, 2)`` losses.
        front: ``(n, 2)`` losses on the front of the same problem
            (:func:`mtlkit.toy.pareto_front`).
        task_names: the two losses' names.
    """
    paths = plots._trajectory_losses(results)
    plots.plot_pareto(front, paths, task_names=task_names)  # validates
    last = max(len(p) for p in paths.values()) - 1
    controls = {
        "strategy": widgets.Dropdown(options=["all", *paths], value="all", description="strategy", style=_STYLE),
        "step": widgets.IntSlider(value=last, min=0, max=last, description="step", continuous_update=False,
                                  style=_STYLE),
    }

    def draw(strategy: str, step: int) -> Figure:
        return plots.plot_pareto(front, paths, highlight=None if strategy == "all" else strategy,
                                 step=None if step == last else step, task_names=task_names)

    return PlotWidget(draw, controls, kind="pareto")


def fusion_widget(fused: Any, curves: Mapping[str, Sequence[float]], alphas: Sequence[float], *, k: int = 10,
                  item_titles: Sequence[str], exclude: Any = None, relevant: Any = None,
                  n_warm_items: int | None = None, n_users: int = 50, ylabel: str = "HR@K") -> PlotWidget:
    """A fused ranking pCTR^(1−α) pCVR^α: drag α, pick a user, see the curves and the user's list.

    Controls: ``alpha`` (FloatSlider over the grid's range and step) and ``user`` (Dropdown of
    the first ``n_users`` users). Draws :func:`~mtlkit.viz.plots.plot_fusion`: the metric
    ``curves`` over α with α marked, and the user's top-k under the fused score, read from
    ``fused`` without running the model again.

    Args:
        fused: a :class:`mtlkit.recommend.FusedRanking` (``users``, ``top_k``).
        curves: name → a metric at each α of ``alphas`` (e.g. from ``fused.ranking_metrics``).
        alphas: the evenly spaced α grid of the curves.
        k: length of the list.
        item_titles: catalog index → title (``schema.item_titles``).
        exclude: (U, n_items − 1) bool, items never listed (the seen items).
        relevant: (U, n_items − 1) bool, items marked ✓ (e.g. clicked in the test period).
        n_warm_items: catalog indices above it are cold items, drawn in the second colour.
        n_users: how many users the dropdown offers.
        ylabel: the curves' y label.
    """
    grid = np.asarray(alphas, dtype=np.float64)
    if grid.ndim != 1 or len(grid) < 2:
        raise ValueError(f"alphas must be a 1-D grid of at least two values, got {alphas!r}")
    users = [int(u) for u in fused.users[:check_int("n_users", n_users, low=1)]]
    step = float(np.round(np.diff(grid).min(), 6))
    start = float(grid[np.argmin(np.abs(grid - 0.5))])  # the pCTCVR ranking when it is on the grid
    controls = {
        "alpha": widgets.FloatSlider(value=start, min=float(grid.min()), max=float(grid.max()), step=step,
                                     description="alpha", continuous_update=False, style=_STYLE),
        "user": widgets.Dropdown(options=users, value=users[0], description="user", style=_STYLE),
    }
    relevant = None if relevant is None else np.asarray(relevant, dtype=bool)

    def draw(alpha: float, user: int) -> Figure:
        row = users.index(user)
        items, scores = fused.top_k(alpha, k, exclude=exclude, rows=[row])
        items = items[0].tolist()
        return plots.plot_fusion(
            grid, curves, alpha, [item_titles[i] for i in items], scores[0],
            marked=None if relevant is None else [bool(relevant[row, i - 1]) for i in items],
            highlighted=None if n_warm_items is None else [i > n_warm_items for i in items],
            ylabel=ylabel, title=f"user {user}: top {k} at alpha = {alpha:.2f}",
        )

    return PlotWidget(draw, controls, kind="fusion")


# --------------------------------------------------------------------------- live training plot
class LiveLossPlot:
    """A trainer callback that redraws the per-task loss curves while a model trains.

    Follows :class:`mtlkit.training.Callback`'s protocol (``on_train_begin``,
    ``on_step_end``, ``on_epoch_end``, ``on_train_end``). It keeps the step rows it is
    given and redraws :func:`~mtlkit.viz.plots.plot_task_losses` into :attr:`output`
    whenever ``every`` more optimiser steps are logged, at every epoch end and at the end.
    Only the main process draws under distributed training.

    Args:
        every: optimiser steps between redraws (rows arrive every ``log_every`` steps).
        tasks, smoothing, log_scale: passed to ``plot_task_losses``.
        display: show :attr:`output` in the running notebook cell when training begins
            (only inside a Jupyter kernel; elsewhere nothing is displayed).

    Attributes:
        output: the ``ipywidgets.Output`` with the current figure.
        records: the step rows seen so far. n_draws: figures drawn.
    """

    def __init__(self, every: int = 50, *, tasks: Sequence[str] | None = None, smoothing: float = 0.0,
                 log_scale: bool = False, display: bool = True) -> None:
        self.every = check_int("every", every, low=1)
        self.tasks = tasks
        self.smoothing = check_number("smoothing", smoothing, low=0, high=1, high_open=True)
        self.log_scale = bool(log_scale)
        self.display = display
        self.output = widgets.Output()
        self.output.add_class("mtlkit-figure")
        self.records: list[dict[str, float]] = []
        self.n_draws = 0
        self._last_drawn_step: float | None = None
        self._displayed = False

    @property
    def png(self) -> bytes | None:
        """The PNG bytes currently shown."""
        return _png_of(self.output)

    def redraw(self) -> None:
        """Draw the curves of the rows seen so far (nothing before the first row)."""
        if not self.records:
            return
        fig = plots.plot_task_losses(self.records, tasks=self.tasks, smoothing=self.smoothing,
                                     log_scale=self.log_scale)
        _show_png(self.output, figure_to_png(fig), repr(fig))
        self.n_draws += 1
        self._last_drawn_step = self.records[-1].get("step", len(self.records))

    @staticmethod
    def _is_main(trainer: Any) -> bool:
        return bool(getattr(trainer, "is_main_process", True))

    def on_train_begin(self, trainer: Any) -> None:
        if not self._is_main(trainer):
            return
        history = getattr(trainer, "history", None)
        if not self.records and history is not None:  # a resumed run shows its earlier steps too
            self.records = [dict(r) for r in getattr(history, "step_records", [])]
        if self.display and not self._displayed and _in_kernel():
            from IPython.display import display

            display(self.output)
            self._displayed = True

    def on_step_end(self, trainer: Any, record: Mapping[str, float]) -> None:
        if not self._is_main(trainer):
            return
        self.records.append(dict(record))
        step = record.get("step", len(self.records))
        if self._last_drawn_step is None or step - self._last_drawn_step >= self.every:
            self.redraw()

    def on_epoch_end(self, trainer: Any, record: Mapping[str, float]) -> None:
        self._catch_up(trainer)

    def on_train_end(self, trainer: Any) -> None:
        self._catch_up(trainer)

    def _catch_up(self, trainer: Any) -> None:
        """Redraw when rows arrived since the last figure."""
        if self._is_main(trainer) and self.records and self._last_drawn_step != self.records[-1].get(
                "step", len(self.records)):
            self.redraw()


def live_loss_callback(every: int = 50, *, tasks: Sequence[str] | None = None, smoothing: float = 0.0,
                       log_scale: bool = False, display: bool = True) -> LiveLossPlot:
    """A :class:`LiveLossPlot` for ``Trainer(..., callbacks=[...])``: live per-task loss curves.

    Example::

        live = live_loss_callback(every=20)
        Trainer(model, data, config, callbacks=[live]).fit()   # the plot appears and updates
    """
    return LiveLossPlot(every, tasks=tasks, smoothing=smoothing, log_scale=log_scale, display=display)


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where a displayed widget is rendered)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
