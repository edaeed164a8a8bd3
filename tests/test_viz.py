"""Tests of mtlkit.viz: each plot shows exactly its input, each widget redraws on a control change.

The plots are read back from the figure (the AxesImage array, the Line2D data), so a test
fails when a plot shows the wrong layer/head/sample or mangles the numbers. The widget tests
are the Python-side proof of what the browser tests check in JupyterLab: setting a
control's value changes the PNG in the widget's Output.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mtlkit.viz import (  # noqa: E402
    PlotWidget,
    attention_widget,
    conflict_widget,
    gate_widget,
    live_loss_callback,
    loss_widget,
    pareto_widget,
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

B, H, L, N_LAYERS = 3, 2, 6, 2
N_PADDED = (2, 0, 4)  # left padding of each sample (the target, last, is never padded)


# --------------------------------------------------------------------------- fixtures
def padding_mask() -> torch.Tensor:
    """(B, L) True = padding, left-padded as the batch's history (plus the target)."""
    mask = torch.zeros(B, L, dtype=torch.bool)
    for b, n in enumerate(N_PADDED):
        mask[b, :n] = True
    return mask


@pytest.fixture(scope="module")
def attention() -> list[torch.Tensor]:
    """Softmax weights with -inf on padded keys, so padded keys get exactly 0, as in the models."""
    gen = torch.Generator().manual_seed(0)
    mask = padding_mask()[:, None, None, :]  # (B, 1, 1, L)
    return [torch.softmax(torch.randn(B, H, L, L, generator=gen).masked_fill(mask, float("-inf")), dim=-1)
            for _ in range(N_LAYERS)]


@pytest.fixture(scope="module")
def gates() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {t: torch.softmax(torch.randn(5, 4, generator=gen), dim=-1) for t in ("click", "purchase")}


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    steps = np.arange(1, 41)
    return pd.DataFrame({
        "epoch": (steps - 1) // 20 + 1,
        "step": steps,
        "loss": rng.random(40),
        "loss/click": 0.7 * np.exp(-steps / 20) + 0.05 * rng.random(40),
        "loss/rating": 5.0 * np.exp(-steps / 10) + 0.5 * rng.random(40),
        "loss/purchase": 0.3 * np.exp(-steps / 30) + 0.05 * rng.random(40),
        "weight/click": np.linspace(1.0, 0.5, 40),
        "weight/rating": np.linspace(1.0, 2.0, 40),
        "weight/purchase": np.ones(40),
        "lr": np.full(40, 1e-3),
        "grad_norm/click": rng.random(40),
        "grad_norm/rating": rng.random(40),
        "grad_cos/click/rating": np.sin(steps / 5.0),
        "grad_cos/click/purchase": np.cos(steps / 7.0),
    })


@pytest.fixture(scope="module")
def epochs() -> pd.DataFrame:
    return pd.DataFrame({"epoch": [1, 2, 3], "step": [20, 40, 60], "loss/click": [0.6, 0.5, 0.45],
                         "valid/click/auc": [0.6, 0.65, 0.7], "valid/click/logloss": [0.6, 0.55, 0.5],
                         "valid/rating/rmse": [1.2, 1.0, 0.9]})


@pytest.fixture(scope="module")
def pareto() -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    t = np.linspace(0, 1, 50)
    front = np.stack([4 * t**2, 40 * (1 - t) ** 2], axis=1)
    s = np.linspace(0, 1, 11)[:, None]
    results = {
        "equal": (np.zeros((11, 2)), np.array([2.5, 45.0]) * (1 - s) + np.array([3.3, 0.3]) * s),
        "mgda": (np.zeros((11, 2)), np.array([2.5, 45.0]) * (1 - s) + np.array([1.0, 10.0]) * s),
    }
    return front, results


@pytest.fixture(autouse=True)
def _small_pngs(monkeypatch):
    """Widgets render at 40 dpi here: the tests compare PNGs, they need not be pretty."""
    monkeypatch.setattr("mtlkit.viz.widgets._DPI", 40)


def image_of(fig: Figure, index: int = 0) -> np.ma.MaskedArray:
    return fig.axes[index].images[0].get_array()


def expect_error(match: str, call, *args, **kwargs) -> None:
    with pytest.raises(ValueError, match=match):
        call(*args, **kwargs)


# --------------------------------------------------------------------------- attention plots
@pytest.mark.parametrize(("layer", "head", "sample"), [(0, 0, 0), (1, 1, 2), (1, 0, 1), (-1, -1, -1)])
def test_attention_heatmap_shows_exactly_the_chosen_map(attention, layer, head, sample):
    fig = plot_attention(attention, layer=layer, head=head, sample=sample)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # the heatmap and its colorbar
    assert len(fig.axes[0].images) == 1
    shown = image_of(fig)
    np.testing.assert_array_equal(shown.data, attention[layer][sample, head].numpy())


def test_attention_padded_positions_are_masked(attention):
    for sample, n in enumerate(N_PADDED):
        mask = np.ma.getmaskarray(image_of(plot_attention(attention, sample=sample)))
        expected = np.zeros((L, L), dtype=bool)
        expected[:, :n] = True  # padded keys
        expected[:n, :] = True  # and the padded positions' queries
        np.testing.assert_array_equal(mask, expected)
        # every shown weight is a real one; padded keys really had weight 0
        assert np.all(attention[0][sample, 0, :, :n].numpy() == 0)


def test_attention_padding_from_the_batch_mask_matches_the_inferred_one(attention):
    history_mask = padding_mask()[:, :-1]  # (B, L-1): the batch's history_padding_mask
    for sample in range(B):
        inferred = np.ma.getmaskarray(image_of(plot_attention(attention, sample=sample)))
        for mask in (history_mask, padding_mask()):
            given = np.ma.getmaskarray(image_of(plot_attention(attention, sample=sample, key_padding_mask=mask)))
            np.testing.assert_array_equal(given, inferred)


def test_attention_hide_padding_drops_padded_rows_and_columns(attention):
    sample, n = 2, N_PADDED[2]
    fig = plot_attention(attention, layer=1, head=1, sample=sample, hide_padding=True, labels=list("abcdef"))
    np.testing.assert_array_equal(image_of(fig).data, attention[1][sample, 1, n:, n:].numpy())
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list("abcdef")[n:]


def test_attention_labels_label_both_axes_and_may_differ_per_sample(attention):
    labels = [[f"s{b}p{i}" for i in range(L)] for b in range(B)]
    fig = plot_attention(attention, sample=1, labels=labels)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == labels[1]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == labels[1]


def test_attention_draws_into_a_given_axes(attention):
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_attention(attention, ax=ax) is fig
    assert ax.images


def test_attention_heads_grid_has_one_axes_per_head(attention):
    fig = plot_attention_heads(attention, layer=1, sample=0)
    assert len(fig.axes) == H + 1  # plus the shared colorbar
    for h in range(H):
        np.testing.assert_array_equal(image_of(fig, h).data, attention[1][0, h].numpy())
    five = [torch.softmax(torch.randn(1, 5, 4, 4), dim=-1)]
    assert len(plot_attention_heads(five, 0, 0, ncols=2).axes) == 5 + 1  # the unused 6th cell removed


def test_figures_show_themselves_as_png_in_jupyter_without_pyplot(attention):
    fig = plot_attention(attention)
    assert fig._repr_png_().startswith(b"\x89PNG")


def test_attention_accepts_one_4d_tensor_as_one_layer(attention):
    np.testing.assert_array_equal(image_of(plot_attention(attention[1], head=1)).data, attention[1][0, 1].numpy())


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"layer": 2}, "layer"),
        ({"layer": 1.0}, "layer"),
        ({"head": H}, "head"),
        ({"sample": -B - 1}, "sample"),
        ({"labels": ["a"] * (L - 1)}, "labels"),
        ({"labels": [["a"] * L] * (B - 1)}, "labels"),
        ({"key_padding_mask": torch.zeros(B, 2, dtype=torch.bool)}, "key_padding_mask"),
    ],
)
def test_attention_bad_arguments_name_the_argument(attention, kwargs, name):
    expect_error(name, plot_attention, attention, **kwargs)


def test_attention_bad_weights_name_the_argument():
    expect_error("weights", plot_attention, [])
    expect_error(r"weights\[0\]", plot_attention, [torch.rand(2, 3, 3)])
    expect_error("weights", plot_attention_heads, [], 0, 0)


def test_token_labels_mark_padding_and_target():
    history = torch.tensor([[0, 2, 1], [3, 1, 2]])
    item = torch.tensor([3, 2])
    assert token_labels(history, item, ("", "one", "two", "three")) == [
        ["pad", "two", "one", "target: three"],
        ["three", "one", "two", "target: two"],
    ]
    assert token_labels(history, item)[0] == ["pad", "item 2", "item 1", "target: item 3"]
    expect_error("history", token_labels, history, torch.tensor([1]))


# --------------------------------------------------------------------------- gate plots
def test_gate_heatmap_is_the_batch_mean_or_one_sample(gates):
    fig = plot_gate_weights(gates)
    assert len(fig.axes) == 2
    expected = torch.stack([g.mean(0) for g in gates.values()]).numpy()
    np.testing.assert_allclose(image_of(fig).data, expected, rtol=1e-6)
    one = image_of(plot_gate_weights(gates, sample=3)).data
    np.testing.assert_allclose(one, torch.stack([g[3] for g in gates.values()]).numpy(), rtol=1e-6)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(gates)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert f"{expected[0, 0]:.2f}" in texts  # annotated cells


def test_gate_heatmap_masks_missing_experts():
    shown = image_of(plot_gate_weights({"a": torch.full((2, 3), 1 / 3), "b": torch.full((2, 2), 0.5)}))
    np.testing.assert_array_equal(np.ma.getmaskarray(shown), [[False, False, False], [False, False, True]])


def test_gate_bad_arguments_name_the_argument(gates):
    expect_error("gates", plot_gate_weights, {})
    expect_error("sample", plot_gate_weights, gates, sample=5)
    expect_error("expert_labels", plot_gate_weights, gates, expert_labels=["x"])
    expect_error(r"gates\['a'\]", plot_gate_weights, {"a": torch.rand(3)})
    expect_error("batch", plot_gate_weights, {"a": torch.rand(3, 2), "b": torch.rand(4, 2)})


# --------------------------------------------------------------------------- history plots
def lines_by_label(fig: Figure) -> dict[str, np.ndarray]:
    return {line.get_label(): np.asarray(line.get_ydata()) for line in fig.axes[0].get_lines()
            if not line.get_label().startswith("_")}


def test_task_losses_plot_every_task_column(history):
    fig = plot_task_losses(history)
    lines = lines_by_label(fig)
    assert set(lines) == {"click", "rating", "purchase"}
    np.testing.assert_array_equal(lines["rating"], history["loss/rating"].to_numpy())
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_xdata(), history["step"].to_numpy())
    assert fig.axes[0].get_yscale() == "linear"
    assert plot_task_losses(history, log_scale=True).axes[0].get_yscale() == "log"
    assert set(lines_by_label(plot_task_losses(history, tasks="click"))) == {"click"}


def test_task_losses_smoothing_is_the_debiased_ema(history):
    s = 0.8
    lines = lines_by_label(plot_task_losses(history, tasks=["click"], smoothing=s))
    x = history["loss/click"].to_numpy()
    # reference: y_t = Σ_i s^i x_{t-i} / Σ_i s^i, computed directly
    expected = [sum(s**i * x[t - i] for i in range(t + 1)) / sum(s**i for i in range(t + 1)) for t in range(len(x))]
    np.testing.assert_allclose(lines["click"], expected, rtol=1e-10)


def test_history_inputs_history_object_and_row_dicts(history):
    class FakeHistory:
        steps = history

    expected = lines_by_label(plot_task_losses(history))
    for source in (FakeHistory(), history.to_dict("records")):
        for name, values in lines_by_label(plot_task_losses(source)).items():
            np.testing.assert_array_equal(values, expected[name])


def test_task_weights_plot_the_weight_columns(history):
    lines = lines_by_label(plot_task_weights(history))
    np.testing.assert_array_equal(lines["click"], history["weight/click"].to_numpy())


def test_history_bad_arguments_name_the_argument(history):
    expect_error("history", plot_task_losses, pd.DataFrame())
    expect_error("history", plot_task_losses, [])
    expect_error("history", plot_task_losses, history[["step", "lr"]])
    expect_error("tasks", plot_task_losses, history, tasks=["click", "nope"])
    expect_error("smoothing", plot_task_losses, history, smoothing=1.0)
    expect_error("x", plot_task_losses, history, x="time")
    expect_error("history", plot_gradient_conflict, history.drop(columns=["grad_cos/click/rating",
                                                                          "grad_cos/click/purchase"]))
    expect_error("pairs", plot_gradient_conflict, history, pairs=["rating/click"])


def test_gradient_conflict_has_zero_line_and_shaded_negative_region(history):
    assert len(lines_by_label(plot_gradient_conflict(history))) == 2
    fig = plot_gradient_conflict(history, pairs=["click/rating"])
    ax = fig.axes[0]
    (label, values), = lines_by_label(fig).items()
    np.testing.assert_allclose(values, history["grad_cos/click/rating"].to_numpy())
    share = (history["grad_cos/click/rating"] < 0).mean()
    assert label == f"click vs rating (cos < 0 in {share:.0%} of steps)"
    assert any(np.all(np.asarray(line.get_ydata()) == 0) for line in ax.get_lines())  # the zero line
    shaded = [p for p in ax.patches if p.get_label() == "conflict (cos < 0)"]
    assert len(shaded) == 1
    (_, y0), (_, y1) = shaded[0].get_extents().transformed(ax.transData.inverted()).get_points()
    assert y0 == pytest.approx(-1.05, abs=1e-3) and y1 == pytest.approx(0.0, abs=1e-3)
    assert ax.get_ylim() == (-1.05, 1.05)
    assert plot_gradient_conflict(history, pairs=[("click", "rating")], smoothing=0.5)


def test_validation_metrics_one_panel_per_metric(epochs):
    fig = plot_validation_metrics(epochs)
    assert [ax.get_title() for ax in fig.axes] == ["validation auc", "validation logloss", "validation rmse"]
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_ydata(), epochs["valid/click/auc"].to_numpy())
    assert len(plot_validation_metrics(epochs, metrics="auc").axes) == 1
    expect_error("metrics", plot_validation_metrics, epochs, metrics="ndcg")


# --------------------------------------------------------------------------- Pareto plot
def test_pareto_plots_the_front_and_every_path(pareto):
    front, results = pareto
    fig = plot_pareto(front, results)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    np.testing.assert_array_equal(lines["Pareto front"].get_xdata(), front[:, 0])
    np.testing.assert_array_equal(lines["mgda"].get_ydata(), results["mgda"][1][:, 1])
    cut = plot_pareto(front, {k: v[1] for k, v in results.items()}, step=3, highlight="equal")
    lines = {line.get_label(): line for line in cut.axes[0].get_lines()}
    assert len(lines["equal"].get_xdata()) == 4
    assert lines["mgda"].get_alpha() < lines["equal"].get_alpha()
    assert cut.axes[0].get_xlim() == fig.axes[0].get_xlim()  # scrubbing does not rescale


def test_pareto_bad_arguments_name_the_argument(pareto):
    front, results = pareto
    expect_error("front", plot_pareto, front[:, :1], results)
    expect_error("trajectories", plot_pareto, front, {})
    expect_error(r"trajectories\['x'\]", plot_pareto, front, {"x": np.zeros((4, 3))})
    expect_error("highlight", plot_pareto, front, results, highlight="pcgrad")
    expect_error("step", plot_pareto, front, results, step=11)


# --------------------------------------------------------------------------- widgets
def change(widget: PlotWidget, name: str, value) -> bytes:
    """Set a control as the browser would (its value), check the figure was redrawn, return its PNG."""
    before, draws = widget.png, widget.n_draws
    widget.controls[name].value = value
    assert widget.last_error is None, widget.last_error
    assert widget.n_draws > draws
    assert widget.png is not None and widget.png != before, f"changing {name} did not change the figure"
    return widget.png


def check_layout(widget: PlotWidget, expected: dict[str, type]) -> None:
    assert isinstance(widget, widgets.VBox)
    controls_row, output = widget.children
    assert output is widget.output and isinstance(output, widgets.Output)
    assert list(controls_row.children) == list(widget.controls.values())
    assert {name: type(c) for name, c in widget.controls.items()} == expected
    for control in widget.controls.values():
        assert control.description
    assert widget.n_draws == 1 and widget.png.startswith(b"\x89PNG")  # the default view, drawn once
    (item,) = output.outputs
    assert item["output_type"] == "display_data" and "image/png" in item["data"]


def test_attention_widget_redraws_on_every_control(attention):
    widget = attention_widget(attention, labels=[f"p{i}" for i in range(L)])
    check_layout(widget, {"sample": widgets.IntSlider, "layer": widgets.Dropdown, "head": widgets.ToggleButtons,
                          "padding": widgets.ToggleButtons})
    assert widget.controls["sample"].max == B - 1
    assert [v for _, v in widget.controls["head"].options] == [0, 1, "all"]
    change(widget, "head", 1)
    change(widget, "layer", 1)
    change(widget, "sample", 2)
    change(widget, "padding", "hide")
    change(widget, "head", "all")
    assert "mtlkit-attention-widget" in widget._dom_classes and "mtlkit-figure" in widget.output._dom_classes


def test_attention_widget_validates_once_at_construction(attention):
    expect_error("weights", attention_widget, [])
    expect_error("labels", attention_widget, attention, labels=["a"])


def test_gate_widget_one_model(gates):
    widget = gate_widget(gates)
    check_layout(widget, {"show": widgets.ToggleButtons, "sample": widgets.IntSlider})
    assert widget.controls["sample"].disabled
    change(widget, "show", "one sample")
    assert not widget.controls["sample"].disabled
    change(widget, "sample", 4)


def test_gate_widget_compares_models(gates):
    other = {t: torch.softmax(torch.randn(2, 3), -1) for t in gates}
    widget = gate_widget({"MMoE": gates, "PLE level 0": other})
    check_layout(widget, {"model": widgets.Dropdown, "show": widgets.ToggleButtons, "sample": widgets.IntSlider})
    widget.controls["show"].value = "one sample"
    widget.controls["sample"].value = 4
    change(widget, "model", "PLE level 0")
    assert widget.controls["sample"].max == 1 and widget.controls["sample"].value == 1
    expect_error("gates", gate_widget, {"a": gates, "b": torch.rand(2, 2)})


def test_loss_widget_redraws_on_every_control(history):
    widget = loss_widget(history)
    check_layout(widget, {"task": widgets.Dropdown, "curve": widgets.ToggleButtons,
                          "smoothing": widgets.FloatSlider, "scale": widgets.ToggleButtons})
    assert widget.controls["task"].options == ("all", "click", "rating", "purchase")
    change(widget, "task", "rating")
    change(widget, "smoothing", 0.5)
    change(widget, "scale", "log")
    change(widget, "curve", "weight")
    expect_error("history", loss_widget, pd.DataFrame())
    expect_error("tasks", loss_widget, history, tasks=["nope"])


def test_conflict_widget_redraws(history):
    widget = conflict_widget(history)
    check_layout(widget, {"pair": widgets.Dropdown, "smoothing": widgets.FloatSlider})
    change(widget, "pair", "click/rating")
    change(widget, "smoothing", 0.3)
    expect_error("history", conflict_widget, history[["step", "loss/click"]])


def test_pareto_widget_redraws(pareto):
    front, results = pareto
    widget = pareto_widget(results, front)
    check_layout(widget, {"strategy": widgets.Dropdown, "step": widgets.IntSlider})
    assert widget.controls["step"].max == 10 and widget.controls["step"].value == 10
    change(widget, "strategy", "mgda")
    change(widget, "step", 2)


def test_a_failing_redraw_is_shown_in_the_output_not_lost():
    def draw(n: int) -> Figure:
        if n == 1:
            raise ValueError("n must be 0, got 1")
        fig = Figure()
        fig.add_subplot().plot([0, n])
        return fig

    widget = PlotWidget(draw, {"n": widgets.IntSlider(0, 0, 2, description="n")}, kind="test")
    widget.controls["n"].value = 1
    assert isinstance(widget.last_error, ValueError) and widget.png is None
    (item,) = widget.output.outputs
    assert item["output_type"] == "stream" and "n must be 0" in item["text"]
    widget.controls["n"].value = 2
    assert widget.last_error is None and widget.png is not None


# --------------------------------------------------------------------------- live training plot
def test_live_loss_callback_redraws_every_n_steps(history):
    class FakeTrainer:
        class history:  # noqa: N801 - stands in for Trainer.history
            step_records: list = []

    live = live_loss_callback(every=10, display=False)
    trainer = FakeTrainer()
    live.on_train_begin(trainer)
    assert live.png is None and live.n_draws == 0
    pngs = []
    for record in history.head(25).to_dict("records"):  # steps 1..25
        live.on_step_end(trainer, record)
        pngs.append(live.png)
    assert live.n_draws == 3  # at steps 1, 11 and 21
    assert len({p for p in pngs}) == 3
    live.on_epoch_end(trainer, {})
    assert live.n_draws == 4  # caught up with steps 22..25
    live.on_train_end(trainer)
    assert live.n_draws == 4  # nothing new since
    expect_error("every", live_loss_callback, every=0)


# Slow only in a fresh process: the first optimiser built imports torch._dynamo (seconds).
@pytest.mark.slow
def test_live_loss_callback_in_a_real_training_run_and_real_model_weights():
    from mtlkit.data import load_dataset
    from mtlkit.models import build_model
    from mtlkit.training import TrainConfig, Trainer

    torch.manual_seed(0)
    data = load_dataset("synthetic-funnel", n_users=40, n_items=20, n_impressions=300, seq_len=4)
    model = build_model("mmoe", data.schema, embedding_dim=4, d_model=8, n_heads=2, d_ff=8, tower_hidden=(8,),
                        n_experts=2, expert_hidden=(8,))
    live = live_loss_callback(every=2, display=False)
    trainer = Trainer(model, data, TrainConfig(epochs=1, batch_size=64, device="cpu", quiet=True, log_every=1),
                      callbacks=[live])
    trainer.fit()
    assert live.n_draws >= 2 and live.png is not None
    assert len(live.records) == len(trainer.history.step_records)

    batch = next(data.valid.batches(4))
    model.eval()
    with torch.no_grad():
        model(batch)
    weights = model.attention_weights()
    labels = token_labels(batch["history"], batch["item"], data.schema.item_titles)
    fig = plot_attention(weights, sample=0, labels=labels, key_padding_mask=batch["history_padding_mask"])
    np.testing.assert_array_equal(image_of(fig).data, weights[0][0, 0].numpy())
    change(attention_widget(weights, labels, key_padding_mask=batch["history_padding_mask"]), "head", 1)
    assert gate_widget(model.gate_weights()).png is not None


def test_pareto_plot_tells_every_strategy_apart():
    import numpy as np

    from mtlkit.viz import plot_pareto

    paths = {f"s{i}": np.random.default_rng(i).random((5, 2)) for i in range(12)}
    fig = plot_pareto(np.random.default_rng(0).random((10, 2)), paths)
    styles = [(line.get_color(), line.get_linestyle()) for line in fig.axes[0].get_lines() if line.get_label() in paths]
    assert len(styles) == len(paths) == len(set(styles))


def test_transfer_gains_plot_draws_a_panel_per_relatedness_and_a_line_per_model():
    from mtlkit.viz import plot_transfer_gains

    rows = [
        {"relatedness": rho, "label_fraction": f, "model": m, "task": "purchase", "metric": "auc",
         "gain": 0.01 * i, "standard_error": 0.005}
        for rho in (0.0, 0.9) for i, f in enumerate((0.1, 1.0)) for m in ("shared-bottom", "mmoe")
    ]
    fig = plot_transfer_gains(rows)
    assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == ["ρ = 0", "ρ = 0.9"]
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["shared-bottom", "mmoe"]
    assert fig.axes[0].get_xscale() == "log"
    with pytest.raises(ValueError, match="task 'click'"):
        plot_transfer_gains(rows, task="click")


# --------------------------------------------------------------------------- legends and model comparisons
def _legend_covers_no_data(fig: Figure) -> bool:
    """No drawn line of any axes passes through any legend's box (in display coordinates)."""
    fig.draw_without_rendering()  # runs the constrained layout, so the boxes are final
    boxes = [legend.get_window_extent() for ax in fig.axes if (legend := ax.get_legend()) is not None]
    covered = False
    for ax in fig.axes:
        for line in ax.get_lines():
            xy = np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float)
            if len(xy) > 1:  # the segments between the vertices too, 20 points each
                t = np.linspace(0, 1, 20)[:, None, None]
                xy = (xy[:-1] + t * (xy[1:] - xy[:-1])).reshape(-1, 2)
            pts = line.get_transform().transform(xy)
            covered |= any(box.contains(x, y) for box in boxes for x, y in pts if np.isfinite([x, y]).all())
    return bool(boxes) and not covered


def test_task_loss_legend_sits_beside_the_curves(history):
    assert _legend_covers_no_data(plot_task_losses(history, log_scale=True))


def test_validation_comparison_one_panel_per_metric_one_line_per_model(epochs):
    from mtlkit.viz import plot_validation_comparison

    other = epochs.assign(**{"valid/click/auc": [0.55, 0.6, 0.62]})
    fig = plot_validation_comparison({"mmoe": epochs, "ple": other}, [("click", "auc"), ("rating", "rmse")])
    assert [ax.get_title() for ax in fig.axes] == ["validation click auc", "validation rating rmse"]
    lines = {line.get_label(): line.get_ydata() for line in fig.axes[0].get_lines()}
    np.testing.assert_array_equal(lines["ple"], [0.55, 0.6, 0.62])
    fig.draw_without_rendering()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)  # epochs are whole numbers
    assert _legend_covers_no_data(fig)
    assert len(plot_validation_comparison({"mmoe": epochs}).axes) == 3  # every valid column by default
    expect_error("panels", plot_validation_comparison, {"mmoe": epochs}, [("click", "ndcg")])
    expect_error("histories", plot_validation_comparison, {})


# --------------------------------------------------------------------------- ranking and calibration plots
def test_roc_pr_plots_the_metric_curves():
    from mtlkit import metrics
    from mtlkit.viz import plot_roc_pr

    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.2
    scores = labels + rng.normal(0, 1, 300)
    fig = plot_roc_pr(labels, {"model": scores, "noise": rng.random(300)})
    roc, pr = fig.axes
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    line = next(line for line in roc.get_lines() if line.get_label().startswith("model"))
    np.testing.assert_array_equal(line.get_xdata(), fpr)
    np.testing.assert_array_equal(line.get_ydata(), tpr)
    assert line.get_label() == f"model (AUC {metrics.roc_auc(labels, scores):.3f})"
    legend = [t.get_text() for t in pr.get_legend().get_texts()]
    assert legend[0] == f"random (AUC 0.5; precision {labels.mean():.2f})" and legend[1].startswith("model (AUC")
    precision, recall, _ = metrics.precision_recall_curve(labels, scores)
    line = next(line for line in pr.get_lines() if line.get_label() == "model")
    np.testing.assert_array_equal(line.get_xdata(), recall)
    np.testing.assert_array_equal(line.get_ydata(), precision)
    assert any(np.allclose(line.get_ydata(), labels.mean()) for line in pr.get_lines())  # the random scorer
    assert _legend_covers_no_data(fig)
    with pytest.raises(ValueError, match="y_true must contain both classes"):
        plot_roc_pr(np.zeros(4), np.arange(4.0))


def test_reliability_plots_each_curve_and_the_diagonal():
    from mtlkit.metrics import calibration_curve
    from mtlkit.viz import plot_reliability

    rng = np.random.default_rng(1)
    prob = rng.random(500)
    truth = np.clip(prob * 0.8, 0, 1)
    curves = {"click": {"a": calibration_curve(truth, prob), "b": calibration_curve(prob, prob)},
              "purchase": {"a": calibration_curve(truth, prob / 2)}}
    fig = plot_reliability(curves, observed_label="mean true probability in the bin")
    assert [ax.get_title() for ax in fig.axes] == ["click: reliability", "purchase: reliability"]
    line = next(line for line in fig.axes[0].get_lines() if line.get_label() == "a")
    np.testing.assert_array_equal(line.get_ydata(), curves["click"]["a"].observed)
    assert any(line.get_label() == "perfect calibration" for line in fig.axes[0].get_lines())
    assert fig.axes[0].get_ylabel() == "mean true probability in the bin"
    expect_error("curves", plot_reliability, {"click": {}})


def test_warm_cold_bars_show_each_value_and_the_row_counts():
    from mtlkit.viz import plot_warm_cold

    scores = {"ID": {"warm": 0.7, "cold": 0.55}, "LM": {"warm": 0.68, "cold": float("nan")}}
    fig = plot_warm_cold(scores, rows={"warm": 900, "cold": 40})
    ax = fig.axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == pytest.approx([0.7, 0.68, 0.55, 0.0])  # warm bars, then cold (NaN left empty)
    assert {t.get_text() for t in ax.texts} == {"0.700", "0.680", "0.550"}
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"warm (900 rows)", "cold (40 rows)", "chance (0.5)"}
    expect_error("scores", plot_warm_cold, {})


def test_fusion_plot_marks_alpha_and_lists_the_items():
    from mtlkit.viz import plot_fusion

    alphas = np.linspace(0, 1, 5)
    fig = plot_fusion(alphas, {"HR, click": [0.5, 0.4, 0.3, 0.2, 0.1]}, 0.25, ["a", "b", "c"], [0.3, 0.2, 0.1],
                      marked=[True, False, False], highlighted=[False, True, False])
    left, right = fig.axes
    assert any(np.allclose(line.get_xdata(), 0.25) for line in left.get_lines())  # the alpha line
    position = {t.get_text(): y for t, y in zip(right.get_yticklabels(), right.get_yticks())}
    assert position["✓ a"] > position["b"] > position["c"]  # best at the top
    assert [bar.get_width() for bar in right.patches] == pytest.approx([0.3, 0.2, 0.1])
    colors = [bar.get_facecolor() for bar in right.patches]
    assert colors[1] != colors[0] == colors[2]  # the highlighted item stands out
    expect_error("curves", plot_fusion, alphas, {"x": [1, 2]}, 0.5, ["a"], [1.0])
    expect_error("marked", plot_fusion, alphas, {}, 0.5, ["a"], [1.0], marked=[True, False])


def test_fusion_widget_redraws_for_alpha_and_user():
    from mtlkit.recommend import FusedRanking
    from mtlkit.viz import fusion_widget

    rng = np.random.default_rng(2)
    fused = FusedRanking(torch.tensor([3, 5, 8]), np.log(rng.random((3, 12))), np.log(rng.random((3, 12))))
    alphas = np.linspace(0, 1, 11)
    titles = [""] + [f"item {i}" for i in range(1, 13)]
    view = fusion_widget(fused, {"HR@4": np.linspace(0.2, 0.4, 11)}, alphas, k=4, item_titles=titles,
                         exclude=np.zeros((3, 12), dtype=bool), relevant=np.eye(3, 12, dtype=bool), n_warm_items=9)
    assert view.values == {"alpha": 0.5, "user": 3} and view.n_draws == 1
    first = view.png
    view.controls["alpha"].value = 0.0
    assert view.png != first and view.n_draws == 2 and view.last_error is None
    view.controls["user"].value = 8
    assert view.n_draws == 3 and view.last_error is None
    assert list(view.controls["user"].options) == [3, 5, 8]
