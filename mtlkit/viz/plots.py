"""Plots of what a multi-task model does: attention, expert gates, per-task training curves,
gradient conflict, the Pareto front of a toy problem, and how well it ranks, calibrates and
serves (ROC and precision-recall curves, reliability diagrams, warm vs cold items, fused scores).

Every function takes plain data (tensors, arrays, a history DataFrame) and returns a
:class:`matplotlib.figure.Figure`; none calls ``plt.show``. Figures are built with
``matplotlib.figure.Figure`` rather than ``pyplot``, so they are not registered with pyplot:
nothing leaks, nothing is shown twice by the notebook's inline backend, and the functions
work under any backend (Agg in tests). In a notebook, a returned figure is shown as a PNG
when it is the cell's last expression (or with ``display(fig)``), with or without pyplot
imported. Pass ``ax=`` to draw into an axes of your own figure instead.

Defaults are colourblind-friendly: heatmaps use *viridis* (perceptually uniform) and lines
the Okabe & Ito (2008) palette, "Color Universal Design".

Data formats:

* attention weights — a list over layers of ``(B, H, L, S)`` tensors or arrays (the
  models' ``attention_weights()``; L = S = seq_len + 1 with the target item last);
  padded keys carry weight 0.
* gate weights — ``{task: (B, n_experts)}`` (``MMoE.gate_weights()``,
  ``PLE.gate_weights(level)``), each row a softmax.
* history — the trainer's step DataFrame (``trainer.history.steps``) or epoch DataFrame,
  with columns ``step``, ``epoch``, ``loss/<task>``, ``weight/<task>``, ``lr`` and, with
  ``record_gradients``, ``grad_norm/<task>`` and ``grad_cos/<a>/<b>``; epoch rows add
  ``valid/<task>/<metric>``. Tasks are discovered from the column names. A
  :class:`mtlkit.training.History` or a list of row dicts is accepted too.
* Pareto toy — the front as an ``(n, 2)`` array of losses and, per strategy, the
  ``(steps + 1, 2)`` losses (or the ``(trajectory, losses)`` pair that
  :func:`mtlkit.toy.run_strategy` returns).
* Evaluation — labels and scores (ROC/PR), :class:`mtlkit.metrics.CalibrationCurve` bins,
  plain ``{model: {part: value}}`` mappings (warm/cold), and per-α metric curves with one
  user's top-k list (fused rankings).

A legend sits outside the axes, to the right, wherever the curves can fill the whole plot:
it never covers a curve.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from mtlkit.checks import check_int, check_number

__all__ = [
    "OKABE_ITO",
    "MASKED_COLOR",
    "NotebookFigure",
    "token_labels",
    "plot_attention",
    "plot_attention_heads",
    "plot_gate_weights",
    "plot_task_losses",
    "plot_task_weights",
    "plot_gradient_conflict",
    "plot_validation_metrics",
    "plot_pareto",
    "plot_transfer_gains",
    "plot_validation_comparison",
    "plot_roc_pr",
    "plot_reliability",
    "plot_warm_cold",
    "plot_fusion",
    "history_tasks",
    "conflict_pairs",
]

#: Okabe & Ito's colourblind-safe palette, ordered so the first colours contrast best on white.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
#: Colour of masked (padded) cells in heatmaps.
MASKED_COLOR = "#d9d9d9"
_MAX_TICKS = 40
_MAX_LABEL = 18


# --------------------------------------------------------------------------- helpers
def _to_numpy(x: Any, name: str) -> np.ndarray:
    """A tensor (any device, with or without grad) or array-like as a float64 array."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().float().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a tensor or array of numbers, got {type(x).__name__}") from error


class NotebookFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that Jupyter shows as a PNG by itself.

    IPython displays figures as images only once the inline backend is active (importing
    pyplot activates it); a figure made without pyplot would otherwise show as
    ``<Figure size ...>``. ``_repr_png_`` makes the figure display itself either way.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=90)
        return buffer.getvalue()


def _index(value: Any, size: int, name: str) -> int:
    """Validate an index into ``size`` items (negative counts from the end, as in Python)."""
    return check_int(name, value, low=-size, high=size - 1) % size


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = NotebookFigure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _short(label: Any, limit: int = _MAX_LABEL) -> str:
    text = str(label)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _set_ticks(ax: Axes, axis: str, labels: Sequence[str], rotate: bool) -> None:
    """Tick every position (thinned beyond 40) with its label."""
    n = len(labels)
    step = max(1, math.ceil(n / _MAX_TICKS))
    positions = list(range(0, n, step))
    texts = [_short(labels[i]) for i in positions]
    fontsize = 8 if n <= 20 else 6
    if axis == "x":
        ax.set_xticks(positions, texts, rotation=90 if rotate else 0, fontsize=fontsize)
    else:
        ax.set_yticks(positions, texts, fontsize=fontsize)


def _palette(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def _linestyle(i: int) -> str:
    """Solid for the first len(OKABE_ITO) lines, then dashed, then dotted: no two lines alike."""
    return ("-", "--", ":")[(i // len(OKABE_ITO)) % 3]


def _legend_outside(ax: Axes, **kwargs: Any) -> None:
    """The legend to the right of the axes (constrained layout makes room): it covers no curve."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8, **kwargs)


# --------------------------------------------------------------------------- attention
def token_labels(history: Any, item: Any, item_titles: Sequence[str] | None = None) -> list[list[str]]:
    """Labels of the attention positions of every sample: the history items, then the target.

    Args:
        history: ``(B, seq_len)`` item indices, left-padded with 0 (the batch's "history").
        item: ``(B,)`` target item indices (the batch's "item").
        item_titles: index → title (``schema.item_titles``); ``item <i>`` when None.

    Returns:
        B lists of ``seq_len + 1`` strings: ``"pad"`` for index 0, the title of each history
        item, and ``"target: <title>"`` last — the ``labels`` of :func:`plot_attention`.
    """
    hist = _to_numpy(history, "history").astype(np.int64)
    target = _to_numpy(item, "item").astype(np.int64).reshape(-1)
    if hist.ndim != 2 or len(target) != len(hist):
        raise ValueError(f"history must be (B, seq_len) and item (B,), got {hist.shape} and {target.shape}")

    def name(i: int) -> str:
        if item_titles is not None and 0 < i < len(item_titles) and item_titles[i]:
            return str(item_titles[i])
        return f"item {i}"

    return [[("pad" if i == 0 else name(int(i))) for i in row] + [f"target: {name(int(t))}"]
            for row, t in zip(hist, target)]


def _attention_layers(weights: Any) -> list[np.ndarray]:
    """A list of (B, H, L, S) arrays from a list of tensors, or one 4-D tensor (one layer)."""
    if hasattr(weights, "ndim") and getattr(weights, "ndim") == 4:
        weights = [weights]
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError(
            "weights must be a non-empty list over layers of (B, H, L, S) tensors "
            f"(model.attention_weights() is [] when attention weights are not kept), got {weights!r:.80}"
        )
    layers = [_to_numpy(w, f"weights[{i}]") for i, w in enumerate(weights)]
    for i, w in enumerate(layers):
        if w.ndim != 4:
            raise ValueError(f"weights[{i}] must have shape (B, H, L, S), got shape {w.shape}")
        if w.shape[:2] != layers[0].shape[:2]:
            raise ValueError(f"weights[{i}] must have the (B, H) of layer 0, {layers[0].shape[:2]}, got {w.shape[:2]}")
    return layers


def _sample_labels(labels: Any, sample: int, n_samples: int, n_keys: int) -> list[str] | None:
    """The key labels of ``sample`` from one list of S labels or B lists of them."""
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise ValueError(f"labels must be a list of {n_keys} strings or {n_samples} such lists, got {labels!r:.80}")
    per_sample = len(labels) > 0 and not isinstance(labels[0], str) and isinstance(labels[0], Sequence)
    if per_sample:
        if len(labels) != n_samples:
            raise ValueError(f"labels must hold one list per sample ({n_samples}), got {len(labels)} lists")
        labels = labels[sample]
    if len(labels) != n_keys:
        raise ValueError(f"labels must have one entry per key position ({n_keys}), got {len(labels)}")
    return [str(x) for x in labels]


def _padding(layer: np.ndarray, key_padding_mask: Any, sample: int) -> np.ndarray:
    """(S,) bool, True = padded key of ``sample``.

    From ``key_padding_mask`` when given ((B, S), or (B, S − 1) — the batch's
    history_padding_mask, to which the never-padded target is appended); otherwise the keys
    no query of any head attends to (weight exactly 0), which is what a key padding mask
    produces.
    """
    n_samples, n_keys = layer.shape[0], layer.shape[-1]
    if key_padding_mask is None:
        return np.all(layer[sample] == 0, axis=(0, 1))  # over heads and queries
    mask = np.asarray(_to_numpy(key_padding_mask, "key_padding_mask") != 0)
    if mask.ndim != 2 or mask.shape[0] != n_samples or mask.shape[1] not in (n_keys, n_keys - 1):
        raise ValueError(
            f"key_padding_mask must have shape ({n_samples}, {n_keys}) or ({n_samples}, {n_keys - 1}) "
            f"(True = padding, the torch convention), got {mask.shape}"
        )
    row = mask[sample]
    return np.concatenate([row, [False]]) if len(row) == n_keys - 1 else row


def _masked(w: np.ndarray, pad: np.ndarray, labels: list[str] | None, hide_padding: bool
            ) -> tuple[np.ma.MaskedArray, list[str], list[str]]:
    """The map with padded key columns (and, for self-attention, the padded positions' query
    rows) masked — or removed when ``hide_padding`` — and the key and query labels left."""
    n_queries, n_keys = w.shape
    square = n_queries == n_keys
    keys = labels if labels is not None else [str(i) for i in range(n_keys)]
    queries = keys if square else [str(i) for i in range(n_queries)]
    if hide_padding:
        keep = ~pad
        w = w[keep][:, keep] if square else w[:, keep]  # (L', S')
        keys = [k for k, p in zip(keys, pad) if not p]
        queries = keys if square else queries
        return np.ma.masked_array(w, mask=np.zeros(w.shape, dtype=bool)), keys, queries
    mask = np.zeros(w.shape, dtype=bool)
    mask[:, pad] = True
    if square:
        mask[pad, :] = True
    return np.ma.masked_array(w, mask=mask), keys, queries


def _draw_heatmap(ax: Axes, data: np.ma.MaskedArray, keys: list[str], queries: list[str], *, vmax: float,
                  cmap: str, rotate: bool, xlabels: bool = True, ylabels: bool = True) -> Any:
    image = ax.imshow(data, cmap=colormaps[cmap].with_extremes(bad=MASKED_COLOR), vmin=0.0, vmax=vmax,
                      interpolation="nearest", aspect="auto")
    if xlabels:
        _set_ticks(ax, "x", keys, rotate)
        ax.set_xlabel("key (attended to)")
    else:
        ax.set_xticks([])
    if ylabels:
        _set_ticks(ax, "y", queries, rotate)
        ax.set_ylabel("query")
    else:
        ax.set_yticks([])
    return image


def plot_attention(weights: Any, *, layer: int = 0, head: int = 0, sample: int = 0,
                   labels: Sequence[str] | Sequence[Sequence[str]] | None = None,
                   key_padding_mask: Any = None, hide_padding: bool = False, vmax: float | None = None,
                   cmap: str = "viridis", ax: Axes | None = None) -> Figure:
    """Heatmap of one head's attention weights A = softmax(QKᵀ/√d_k) for one sample.

    Row i is query position i's distribution over the keys (each row sums to 1). Padded
    positions are greyed out: their key columns (weight 0) and, for self-attention, their
    query rows (a padded query's output is never used).

    Args:
        weights: list over layers of ``(B, H, L, S)`` weights (``model.attention_weights()``),
            or one such 4-D tensor.
        layer, head, sample: which map to show (negative indices count from the end).
        labels: S key labels (e.g. item titles, "pad", "target"), or B such lists (one per
            sample, see :func:`token_labels`); positions are numbered when None.
        key_padding_mask: ``(B, S)`` or ``(B, S − 1)`` bool, True = padding (torch's
            ``key_padding_mask`` convention; a ``(B, S − 1)`` mask is the batch's
            ``history_padding_mask`` and the target position is appended as not padded).
            When None, keys with weight 0 from every query and head are taken as padding.
        hide_padding: drop the padded positions instead of greying them (short histories
            then fill the picture).
        vmax: top of the colour scale (default: the largest weight shown).
        cmap: a matplotlib colormap name.
        ax: draw into this axes (a colorbar is added beside it).

    Returns:
        the figure; its first image's array is the masked ``(L, S)`` map (without the
        padded rows and columns when ``hide_padding``).
    """
    layers = _attention_layers(weights)
    layer = _index(layer, len(layers), "layer")
    n_samples, n_heads = layers[0].shape[:2]
    head = _index(head, n_heads, "head")
    sample = _index(sample, n_samples, "sample")
    w = layers[layer][sample, head]  # (L, S)
    key_labels = _sample_labels(labels, sample, n_samples, w.shape[1])
    pad = _padding(layers[layer], key_padding_mask, sample)
    data, keys, queries = _masked(w, pad, key_labels, hide_padding)
    top = float(vmax) if vmax is not None else float(max(data.max(), 1e-12)) if data.count() else 1.0
    side = min(9.0, 3.5 + 0.13 * data.shape[1])
    fig, ax = _new_axes(ax, (side + 1.2, side))
    image = _draw_heatmap(ax, data, keys, queries, vmax=top, cmap=cmap, rotate=key_labels is not None)
    fig.colorbar(image, ax=ax, label="attention weight")
    ax.set_title(f"layer {layer}, head {head}, sample {sample}")
    return fig


def plot_attention_heads(weights: Any, layer: int = 0, sample: int = 0, *,
                         labels: Sequence[str] | Sequence[Sequence[str]] | None = None,
                         key_padding_mask: Any = None, hide_padding: bool = False,
                         ncols: int | None = None, cmap: str = "viridis") -> Figure:
    """Every head of one layer for one sample, side by side on one colour scale.

    Heads of a trained model often specialise (the most recent item, items like the target,
    the target itself); a shared scale makes their sharpness comparable. Arguments as in
    :func:`plot_attention`; ``ncols`` heads per row (default up to 4).

    Returns:
        a figure with one axes per head plus one colorbar axes.
    """
    layers = _attention_layers(weights)
    layer = _index(layer, len(layers), "layer")
    n_samples, n_heads = layers[0].shape[:2]
    sample = _index(sample, n_samples, "sample")
    if ncols is None:
        ncols = min(n_heads, 4)
    ncols = check_int("ncols", ncols, low=1)
    nrows = math.ceil(n_heads / ncols)
    maps = layers[layer][sample]  # (H, L, S)
    key_labels = _sample_labels(labels, sample, n_samples, maps.shape[-1])
    pad = _padding(layers[layer], key_padding_mask, sample)
    masked = [_masked(m, pad, key_labels, hide_padding) for m in maps]
    keys, queries = masked[0][1], masked[0][2]
    top = max((float(m.max()) for m, _, _ in masked if m.count()), default=1.0) or 1.0

    cell = min(4.0, 1.8 + 0.07 * masked[0][0].shape[-1])
    label_room = 1.4 if key_labels is not None else 0.4  # rotated key labels under the bottom row
    fig = NotebookFigure(figsize=(cell * ncols + 1.2, cell * nrows + label_room + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for h in range(nrows * ncols):
        ax = axes.flat[h]
        if h >= n_heads:
            fig.delaxes(ax)
            continue
        row, col = divmod(h, ncols)
        image = _draw_heatmap(ax, masked[h][0], keys, queries, vmax=top, cmap=cmap, rotate=key_labels is not None,
                              xlabels=row == nrows - 1 or h + ncols >= n_heads, ylabels=col == 0)
        ax.set_title(f"head {h}", fontsize=9)
    fig.colorbar(image, ax=[a for a in axes.flat[:n_heads]], label="attention weight")
    fig.suptitle(f"layer {layer}, sample {sample}: all {n_heads} heads")
    return fig


# --------------------------------------------------------------------------- gates
def _gate_matrix(gates: Any, sample: int | None) -> tuple[list[str], np.ndarray, int]:
    """(tasks, (T, E_max) matrix with NaN where a task has fewer experts, batch size)."""
    if not isinstance(gates, Mapping) or not gates:
        raise ValueError(
            "gates must be a non-empty dict task -> (B, n_experts) gate weights "
            f"(model.gate_weights()), got {gates!r:.80}"
        )
    arrays = {str(t): _to_numpy(g, f"gates[{t!r}]") for t, g in gates.items()}
    for task, g in arrays.items():
        if g.ndim != 2 or g.shape[0] == 0 or g.shape[1] == 0:
            raise ValueError(f"gates[{task!r}] must have shape (B, n_experts) with B, n_experts >= 1, got {g.shape}")
    sizes = {g.shape[0] for g in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(f"gates must hold the same batch for every task, got batch sizes {sorted(sizes)}")
    n_samples = sizes.pop()
    if sample is not None:
        sample = _index(sample, n_samples, "sample")
    tasks = list(arrays)
    n_experts = max(g.shape[1] for g in arrays.values())
    matrix = np.full((len(tasks), n_experts), np.nan)
    for i, task in enumerate(tasks):
        g = arrays[task]
        matrix[i, : g.shape[1]] = g.mean(axis=0) if sample is None else g[sample]
    return tasks, matrix, n_samples


def plot_gate_weights(gates: Mapping[str, Any], *, sample: int | None = None,
                      expert_labels: Sequence[str] | None = None, title: str | None = None,
                      cmap: str = "viridis", ax: Axes | None = None) -> Figure:
    """Heatmap task × expert of MMoE/PLE gate weights g_t(x) = softmax(W_t x), annotated.

    Each task's gate mixes the experts, f_t(x) = Σ_k g_t(x)_k e_k(x) (Ma et al., KDD 2018,
    "Modeling Task Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts").
    Tasks that use different experts have learned to share less.

    Args:
        gates: task → ``(B, n_experts)`` gate weights (``model.gate_weights()``).
        sample: show this sample's gates; None shows the mean over the batch.
        expert_labels: column names (e.g. PLE's ``["own 0", "own 1", "shared 0"]``);
            ``expert k`` when None.
        title: the axes title (a default says what is averaged).
        cmap: a matplotlib colormap name (the scale is fixed to [0, 1]).
        ax: draw into this axes.

    Returns:
        the figure; its first image's array is the ``(n_tasks, n_experts)`` matrix.
    """
    tasks, matrix, n_samples = _gate_matrix(gates, sample)
    n_experts = matrix.shape[1]
    if expert_labels is not None and len(expert_labels) != n_experts:
        raise ValueError(f"expert_labels must have {n_experts} entries, got {len(expert_labels)}")
    labels = list(expert_labels) if expert_labels is not None else [f"expert {k}" for k in range(n_experts)]
    fig, ax = _new_axes(ax, (1.6 + 0.9 * n_experts, 1.4 + 0.55 * len(tasks)))
    data = np.ma.masked_invalid(matrix)
    image = ax.imshow(data, cmap=colormaps[cmap].with_extremes(bad=MASKED_COLOR), vmin=0.0, vmax=1.0,
                      aspect="auto", interpolation="nearest")
    for (i, k), value in np.ndenumerate(matrix):
        if np.isfinite(value):
            ax.text(k, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if value > 0.6 else "white")
    ax.set_xticks(range(n_experts), [_short(x) for x in labels], rotation=45 if n_experts > 4 else 0,
                  fontsize=8)
    ax.set_yticks(range(len(tasks)), tasks)
    ax.set_xlabel("expert")
    ax.set_ylabel("task (gate)")
    fig.colorbar(image, ax=ax, label="gate weight")
    if title is None:
        title = f"mean gate weights over {n_samples} samples" if sample is None else f"gate weights of sample {sample}"
    ax.set_title(title, fontsize=10)
    return fig


# --------------------------------------------------------------------------- history
def _frame(history: Any, which: str = "steps") -> Any:
    """A non-empty DataFrame from a DataFrame, a History (its ``steps``/``epochs``) or row dicts."""
    import pandas as pd

    if isinstance(history, pd.DataFrame):
        frame = history
    elif hasattr(history, which) and isinstance(getattr(history, which), pd.DataFrame):
        frame = getattr(history, which)
    elif isinstance(history, Sequence) and not isinstance(history, (str, bytes)):
        frame = pd.DataFrame(list(history))
    else:
        raise ValueError(f"history must be a DataFrame, a History or a list of row dicts, got {type(history).__name__}")
    if len(frame) == 0:
        raise ValueError("history must have at least one row, got an empty history (train first)")
    return frame


def history_tasks(history: Any, prefix: str = "loss") -> list[str]:
    """Task names found in ``<prefix>/<task>`` columns, in column order (e.g. ``loss/click``)."""
    frame = _frame(history)
    start = f"{prefix}/"
    return [c[len(start):] for c in frame.columns if c.startswith(start) and "/" not in c[len(start):]]


def conflict_pairs(history: Any) -> list[tuple[str, str]]:
    """Task pairs (a, b) with a ``grad_cos/<a>/<b>`` column, in column order."""
    frame = _frame(history)
    pairs = []
    for column in frame.columns:
        parts = column.split("/")
        if len(parts) == 3 and parts[0] == "grad_cos":
            pairs.append((parts[1], parts[2]))
    return pairs


def _smooth(values: Any, smoothing: float) -> Any:
    """Debiased exponential moving average ŷ_t = Σ_i s^i x_{t−i} / Σ_i s^i (TensorBoard's)."""
    if smoothing == 0:
        return values
    return values.ewm(alpha=1.0 - smoothing, adjust=True).mean()


def _x_column(frame: Any, x: str) -> tuple[Any, str]:
    if x in frame.columns:
        return frame[x], x
    if x == "step" and "epoch" in frame.columns:
        return frame["epoch"], "epoch"
    raise ValueError(f"x must be a column of the history ({list(frame.columns)[:8]}...), got {x!r}")


def _pick(requested: Any, available: Sequence[str], name: str) -> list[str]:
    """``requested`` (None = all, one name, or a list) checked against ``available``."""
    if requested is None:
        return list(available)
    chosen = [requested] if isinstance(requested, str) else list(requested)
    unknown = [t for t in chosen if t not in available]
    if unknown or not chosen:
        raise ValueError(f"{name} must be a non-empty selection of {list(available)}, got {requested!r}")
    return chosen


def _plot_task_curves(history: Any, prefix: str, ylabel: str, *, tasks: Any, smoothing: float,
                      log_scale: bool, x: str, ax: Axes | None, title: str) -> Figure:
    """One line per task of the ``<prefix>/<task>`` columns (raw faint, smoothed solid)."""
    frame = _frame(history)
    available = history_tasks(frame, prefix)
    if not available:
        raise ValueError(f"history must have '{prefix}/<task>' columns, got columns {list(frame.columns)}")
    chosen = _pick(tasks, available, "tasks")
    smoothing = check_number("smoothing", smoothing, low=0, high=1, high_open=True)
    xs, xlabel = _x_column(frame, x)
    fig, ax = _new_axes(ax, (6.4, 3.8))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for task in chosen:
        color = _palette(available.index(task))
        values = frame[f"{prefix}/{task}"]
        if smoothing:
            ax.plot(xs, values, color=color, alpha=0.25, linewidth=1)
        ax.plot(xs, _smooth(values, smoothing), color=color, linewidth=1.8, label=task,
                marker="o" if len(frame) == 1 else None)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    _legend_outside(ax, title="task")
    ax.set_title(title + (f" (EMA smoothing {smoothing:g})" if smoothing else ""), fontsize=10)
    return fig


def plot_task_losses(history: Any, *, tasks: str | Sequence[str] | None = None, smoothing: float = 0.0,
                     log_scale: bool = False, x: str = "step", ax: Axes | None = None) -> Figure:
    """Training loss L_t of every task over the steps (the ``loss/<task>`` columns).

    Losses of different kinds live on different scales (a rating MSE next to a click
    log-loss); ``log_scale`` puts them on one picture.

    Args:
        history: the step history (``trainer.history.steps``), or the epoch history with
            ``x="epoch"``.
        tasks: one task or a list (default: every ``loss/<task>`` column).
        smoothing: s ∈ [0, 1) of a debiased exponential moving average; the raw curve is
            drawn faintly behind the smoothed one. 0 = raw.
        log_scale: logarithmic y axis.
        x: the column on the x axis.
        ax: draw into this axes.
    """
    return _plot_task_curves(history, "loss", "training loss", tasks=tasks, smoothing=smoothing,
                             log_scale=log_scale, x=x, ax=ax, title="per-task training loss")


def plot_task_weights(history: Any, *, tasks: str | Sequence[str] | None = None, smoothing: float = 0.0,
                      log_scale: bool = False, x: str = "step", ax: Axes | None = None) -> Figure:
    """The weight w_t each task got in L = Σ_t w_t L_t over the steps (``weight/<task>``).

    Constant for equal and static weighting; learned by uncertainty weighting (Kendall et
    al., CVPR 2018), adapted by DWA (Liu et al., CVPR 2019) and GradNorm (Chen et al., ICML
    2018). Arguments as in :func:`plot_task_losses`.
    """
    return _plot_task_curves(history, "weight", "task weight w_t", tasks=tasks, smoothing=smoothing,
                             log_scale=log_scale, x=x, ax=ax, title="task weights")


def plot_gradient_conflict(history: Any, *, pairs: Sequence[str | tuple[str, str]] | None = None,
                           smoothing: float = 0.0, x: str = "step", ax: Axes | None = None) -> Figure:
    """Cosine between two tasks' gradients on the shared parameters, over the steps.

    cos(g_a, g_b) = g_a·g_b / (‖g_a‖ ‖g_b‖); below 0 the tasks' gradients *conflict*: a step
    along one raises the other's loss to first order (Yu et al., NeurIPS 2020, "Gradient
    Surgery for Multi-Task Learning"). The negative region is shaded and the legend gives
    the share of logged steps in it. Needs ``TrainConfig(record_gradients=True)``.

    Args:
        history: the step history with ``grad_cos/<a>/<b>`` columns.
        pairs: which pairs, as ``"a/b"`` strings or ``(a, b)`` tuples (default: all).
        smoothing, x, ax: as in :func:`plot_task_losses`.
    """
    frame = _frame(history)
    available = conflict_pairs(frame)
    if not available:
        raise ValueError(
            "history must have 'grad_cos/<a>/<b>' columns (train with TrainConfig(record_gradients=True) "
            "and a model with shared parameters), got none"
        )
    names = [f"{a}/{b}" for a, b in available]
    requested = None if pairs is None else [p if isinstance(p, str) else "/".join(p) for p in
                                            ([pairs] if isinstance(pairs, str) else pairs)]
    chosen = _pick(requested, names, "pairs")
    smoothing = check_number("smoothing", smoothing, low=0, high=1, high_open=True)
    xs, xlabel = _x_column(frame, x)
    fig, ax = _new_axes(ax, (6.4, 3.8))
    ax.axhspan(-1.05, 0.0, color="#999999", alpha=0.15, linewidth=0, label="conflict (cos < 0)")
    ax.axhline(0.0, color="black", linewidth=0.8)
    for name in chosen:
        values = frame[f"grad_cos/{name}"]
        share = float((values.dropna() < 0).mean()) if values.notna().any() else float("nan")
        color = _palette(names.index(name))
        if smoothing:
            ax.plot(xs, values, color=color, alpha=0.25, linewidth=1)
        a, b = name.split("/")
        ax.plot(xs, _smooth(values, smoothing), color=color, linewidth=1.8,
                label=f"{a} vs {b} (cos < 0 in {share:.0%} of steps)", marker="o" if len(frame) == 1 else None)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cosine of task gradients")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("gradient conflict on the shared parameters" + (f" (EMA {smoothing:g})" if smoothing else ""),
                 fontsize=10)
    return fig


def plot_validation_metrics(history: Any, *, metrics: str | Sequence[str] | None = None,
                            tasks: str | Sequence[str] | None = None) -> Figure:
    """Validation metrics per epoch (``valid/<task>/<metric>``), one panel per metric.

    Args:
        history: the epoch history (``trainer.history.epochs`` or the History itself).
        metrics: which metrics (default: every one present, e.g. auc, logloss, gauc, rmse).
        tasks: which tasks (default: all).

    Returns:
        a figure with one axes per metric.
    """
    frame = _frame(history, "epochs")
    found: dict[str, list[str]] = {}
    for column in frame.columns:
        parts = column.split("/")
        if len(parts) == 3 and parts[0] == "valid":
            found.setdefault(parts[2], []).append(parts[1])
    if not found:
        raise ValueError(f"history must have 'valid/<task>/<metric>' columns (the epoch history), "
                         f"got columns {list(frame.columns)}")
    chosen_metrics = _pick(metrics, list(found), "metrics")
    all_tasks = list(dict.fromkeys(t for m in found.values() for t in m))
    chosen_tasks = _pick(tasks, all_tasks, "tasks")
    xs, xlabel = _x_column(frame, "epoch")
    ncols = min(3, len(chosen_metrics))
    nrows = math.ceil(len(chosen_metrics) / ncols)
    fig = NotebookFigure(figsize=(3.6 * ncols + 0.4, 3.0 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).flat
    for ax in axes[len(chosen_metrics):]:
        fig.delaxes(ax)
    for ax, metric in zip(axes, chosen_metrics):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for task in chosen_tasks:
            if task in found[metric]:
                ax.plot(xs, frame[f"valid/{task}/{metric}"], marker="o", color=_palette(all_tasks.index(task)),
                        label=task)
        ax.set_title(f"validation {metric}", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


# --------------------------------------------------------------------------- Pareto toy
def _trajectory_losses(trajectories: Any) -> dict[str, np.ndarray]:
    if not isinstance(trajectories, Mapping) or not trajectories:
        raise ValueError(
            f"trajectories must be a non-empty dict name -> (steps + 1, 2) losses, got {trajectories!r:.80}"
        )
    out = {}
    for name, value in trajectories.items():
        if isinstance(value, tuple) and len(value) == 2:  # run_strategy's (trajectory, losses)
            value = value[1]
        losses = _to_numpy(value, f"trajectories[{name!r}]")
        if losses.ndim != 2 or losses.shape[1] != 2 or len(losses) == 0:
            raise ValueError(f"trajectories[{name!r}] must have shape (steps + 1, 2), got {losses.shape}")
        out[str(name)] = losses
    return out


def plot_pareto(front: Any, trajectories: Mapping[str, Any], *, highlight: str | None = None,
                step: int | None = None, task_names: Sequence[str] = ("f1", "f2"),
                ax: Axes | None = None) -> Figure:
    """The Pareto front of two losses and the path each weighting strategy took to it.

    A point is Pareto optimal when no other point lowers one loss without raising the
    other; the front is the set of their loss pairs. Every strategy's path starts at ○ and
    ends at ★ (or at ● when ``step`` cuts it); where it meets the front shows which
    trade-off the strategy picks (equal weighting is pulled towards the task with the
    larger loss scale).

    Args:
        front: ``(n, 2)`` losses on the front (:func:`mtlkit.toy.pareto_front`).
        trajectories: name → ``(steps + 1, 2)`` losses, or the ``(trajectory, losses)`` pair
            of :func:`mtlkit.toy.run_strategy`.
        highlight: draw this strategy boldly and the others faintly (colours stay fixed).
        step: draw each path up to this step (0 = the start); None draws it whole. The axes
            limits do not depend on it, so scrubbing through steps does not rescale.
        task_names: the two losses' names, for the axis labels.
        ax: draw into this axes.
    """
    front = _to_numpy(front, "front")
    if front.ndim != 2 or front.shape[1] != 2 or len(front) == 0:
        raise ValueError(f"front must have shape (n, 2), got {front.shape}")
    paths = _trajectory_losses(trajectories)
    if highlight is not None and highlight not in paths:
        raise ValueError(f"highlight must be one of {list(paths)} or None, got {highlight!r}")
    longest = max(len(p) for p in paths.values())
    if step is not None:
        step = _index(step, longest, "step")
    if len(task_names) != 2:
        raise ValueError(f"task_names must name the two losses, got {task_names!r}")

    fig, ax = _new_axes(ax, (6.0, 4.8))
    order = np.argsort(front[:, 0])
    ax.plot(front[order, 0], front[order, 1], color="black", linestyle="--", linewidth=1.5, label="Pareto front",
            zorder=3)
    everything = np.concatenate([front, *paths.values()])
    low, high = everything.min(axis=0), everything.max(axis=0)
    pad = 0.05 * np.maximum(high - low, 1e-9)
    for i, (name, losses) in enumerate(paths.items()):
        color = _palette(i)
        faint = highlight is not None and name != highlight
        alpha, width = (0.25, 1.0) if faint else (1.0, 2.0)
        end = len(losses) - 1 if step is None else min(step, len(losses) - 1)
        shown = losses[: end + 1]
        ax.plot(shown[:, 0], shown[:, 1], color=color, linestyle=_linestyle(i), alpha=alpha, linewidth=width,
                label=name, zorder=2 if faint else 4)
        ax.plot(*losses[0], marker="o", markerfacecolor="white", color=color, alpha=alpha, markersize=7, zorder=5)
        ax.plot(*shown[-1], marker="*" if end == len(losses) - 1 else "o", color=color, alpha=alpha,
                markersize=12 if end == len(losses) - 1 else 7, zorder=5)
    ax.set_xlim(low[0] - pad[0], high[0] + pad[0])
    ax.set_ylim(low[1] - pad[1], high[1] + pad[1])
    ax.set_xlabel(f"loss {task_names[0]}")
    ax.set_ylabel(f"loss {task_names[1]}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    where = "" if step is None else f" — step {step}"
    ax.set_title(f"weighting strategies on the Pareto front{where}", fontsize=10)
    return fig


# --------------------------------------------------------------------------- transfer experiment
def plot_transfer_gains(rows: Sequence[Mapping[str, Any]], *, task: str = "purchase", metric: str = "auc",
                        baseline: str = "single") -> Figure:
    """Gain of each shared model over the single-task baseline, by label scarcity, one panel per ρ.

    Args:
        rows: one mapping per (relatedness, label_fraction, model) with keys ``relatedness``,
            ``label_fraction``, ``model``, ``task``, ``metric``, ``gain`` (paired mean, > 0 =
            better than ``baseline``) and ``standard_error`` — the rows of
            ``benchmarks/reproduce_transfer.py``'s results or of notebook 09.
        task, metric: which rows to draw.
        baseline: the model the gains are measured against (named in the y label).

    Returns:
        a figure: x = share of users with observed labels (log scale), y = gain ± 1 SE, a line
        per model, a dashed zero line (no transfer); above it sharing helps, below it hurts.
    """
    chosen = [r for r in rows if r["task"] == task and r["metric"] == metric]
    if not chosen:
        raise ValueError(f"rows must hold rows of task {task!r} and metric {metric!r}, got none")
    relatedness = sorted({float(r["relatedness"]) for r in chosen})
    models = list(dict.fromkeys(r["model"] for r in chosen))
    fig = NotebookFigure(figsize=(3.2 * len(relatedness) + 0.6, 3.2), layout="constrained")
    axes = fig.subplots(1, len(relatedness), squeeze=False, sharey=True)[0]
    for ax, rho in zip(axes, relatedness):
        ax.axhline(0.0, color="#555555", linestyle="--", linewidth=1)
        for i, model in enumerate(models):
            line = sorted((r for r in chosen if float(r["relatedness"]) == rho and r["model"] == model),
                          key=lambda r: r["label_fraction"])
            if not line:
                continue
            xs = [r["label_fraction"] for r in line]
            ax.errorbar(xs, [r["gain"] for r in line], yerr=[r["standard_error"] for r in line], marker="o",
                        capsize=3, color=_palette(i), linestyle=_linestyle(i), label=model)
        ax.set_xscale("log")
        ax.set_xticks(sorted({r["label_fraction"] for r in chosen}))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.0%}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"ρ = {rho:g}", fontsize=10)
        ax.set_xlabel(f"users with {task} labels")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{task} {metric} − {baseline} (± 1 SE)")
    axes[-1].legend(fontsize=8)
    return fig


# --------------------------------------------------------------------------- comparing models
def plot_validation_comparison(histories: Mapping[str, Any], panels: Sequence[tuple[str, str]] | None = None
                               ) -> Figure:
    """One validation metric per panel over the epochs, one line per model.

    Args:
        histories: model name → its epoch history (``trainer.history``, its ``epochs``
            DataFrame or row dicts) with ``valid/<task>/<metric>`` columns.
        panels: ``(task, metric)`` pairs, one panel each (default: every column of the first
            history, in column order).

    Returns:
        a figure with one axes per panel (integer epoch ticks) and one legend of the models
        to their right.
    """
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError(f"histories must be a non-empty dict model -> epoch history, got {histories!r:.80}")
    frames = {str(name): _frame(history, "epochs") for name, history in histories.items()}
    first = next(iter(frames.values()))
    available = [tuple(c.split("/")[1:]) for c in first.columns if c.startswith("valid/") and c.count("/") == 2]
    chosen = available if panels is None else [tuple(p) for p in panels]
    missing = [f"valid/{t}/{m}" for name, frame in frames.items() for t, m in chosen if f"valid/{t}/{m}" not in frame]
    if not chosen or missing:
        raise ValueError(f"panels must name (task, metric) pairs every history has, got {panels!r} "
                         f"(missing columns {missing[:4]}, available {available})")
    fig = NotebookFigure(figsize=(3.7 * len(chosen) + 1.6, 3.3), layout="constrained")
    axes = fig.subplots(1, len(chosen), squeeze=False)[0]
    for ax, (task, metric) in zip(axes, chosen):
        for i, (name, frame) in enumerate(frames.items()):
            xs, _ = _x_column(frame, "epoch")
            ax.plot(xs, frame[f"valid/{task}/{metric}"], marker="o", color=_palette(i), linestyle=_linestyle(i),
                    label=name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"validation {task} {metric}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    _legend_outside(axes[-1], title="model")
    return fig


# --------------------------------------------------------------------------- ranking and calibration
def plot_roc_pr(y_true: Any, scores: Any | Mapping[str, Any]) -> Figure:
    """The ROC curve (left) and the precision-recall curve (right) of one or several scorers.

    ROC: TPR against FPR over every threshold; the diagonal is a random scorer and the area
    under the curve is the AUC (Fawcett, Pattern Recognition Letters 2006). PR: precision
    against recall; a random scorer's precision is the positive rate, drawn dashed, which is
    why the PR curve shows more than the ROC curve when positives are rare (Davis & Goadrich,
    ICML 2006; Saito & Rehmsmeier, PLoS ONE 2015).

    Args:
        y_true: (n,) 0/1 labels with both classes.
        scores: (n,) scores, or name → (n,) scores to compare several.

    Returns:
        a figure of two axes and one legend, to their right, that gives each scorer's AUC.
    """
    from mtlkit import metrics

    named = dict(scores) if isinstance(scores, Mapping) else {"model": scores}
    if not named:
        raise ValueError("scores must hold at least one scorer, got none")
    labels = _to_numpy(y_true, "y_true")
    fig = NotebookFigure(figsize=(10.5, 4.0), layout="constrained")
    roc, pr = fig.subplots(1, 2)
    base_rate = float(np.mean(labels))
    roc.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1,
             label=f"random (AUC 0.5; precision {base_rate:.2f})")
    pr.axhline(base_rate, color="#999999", linestyle="--", linewidth=1)
    for i, (name, score) in enumerate(named.items()):
        fpr, tpr, _ = metrics.roc_curve(labels, score)
        precision, recall, _ = metrics.precision_recall_curve(labels, score)
        auc = metrics.roc_auc(labels, score)
        roc.plot(fpr, tpr, color=_palette(i), linestyle=_linestyle(i), label=f"{name} (AUC {auc:.3f})")
        pr.plot(recall, precision, color=_palette(i), linestyle=_linestyle(i), label=name)
    roc.set(xlabel="false-positive rate", ylabel="true-positive rate", xlim=(0, 1), ylim=(0, 1.02))
    roc.set_title("ROC curve", fontsize=10)
    pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    pr.set_title("precision-recall curve", fontsize=10)
    roc.grid(alpha=0.3)
    pr.grid(alpha=0.3)
    handles, legend_labels = roc.get_legend_handles_labels()  # the same styles on both panels
    _legend_outside(pr, handles=handles, labels=legend_labels)
    return fig


def plot_reliability(curves: Mapping[str, Mapping[str, Any]], *,
                     observed_label: str = "observed rate in the bin") -> Figure:
    """Reliability diagrams: mean target against mean prediction per bin, one panel per group.

    A calibrated model lies on the diagonal (DeGroot & Fienberg, The Statistician 1983);
    below it, it over-predicts. Bins with few samples say little: marker areas grow with the
    bin's count.

    Args:
        curves: panel (e.g. a task) → model → a :class:`mtlkit.metrics.CalibrationCurve` (or
            anything with ``count``, ``predicted`` and ``observed``).
        observed_label: the y label, e.g. "mean true probability in the bin" when the curves
            were computed against the true probabilities.

    Returns:
        a figure with one axes per panel and one legend of the models to the right.
    """
    if not isinstance(curves, Mapping) or not curves or not all(isinstance(v, Mapping) and v for v in curves.values()):
        raise ValueError(f"curves must be a non-empty dict panel -> {{model: calibration curve}}, got {curves!r:.80}")
    fig = NotebookFigure(figsize=(4.6 * len(curves) + 1.8, 4.2), layout="constrained")
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (panel, by_model) in zip(axes, curves.items()):
        top = 0.0
        for i, (name, curve) in enumerate(by_model.items()):
            predicted, observed = _to_numpy(curve.predicted, "predicted"), _to_numpy(curve.observed, "observed")
            count = _to_numpy(curve.count, "count")
            ax.plot(predicted, observed, color=_palette(i), linestyle=_linestyle(i), label=name)
            ax.scatter(predicted, observed, s=8 + 60 * np.sqrt(count / count.max()), color=_palette(i), zorder=3)
            top = max(top, float(predicted.max()), float(observed.max()))
        ax.plot([0, top], [0, top], color="black", linestyle="--", linewidth=1, label="perfect calibration")
        ax.set_xlabel("mean prediction in the bin")
        ax.set_ylabel(observed_label)
        ax.set_title(f"{panel}: reliability", fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    _legend_outside(axes[-1], handles=handles, labels=labels)
    return fig


def plot_warm_cold(scores: Mapping[str, Mapping[str, float]], *, rows: Mapping[str, int] | None = None,
                   metric: str = "click AUC", chance: float | None = 0.5) -> Figure:
    """A metric on warm items (seen in training) beside cold ones, one group of bars per model.

    Args:
        scores: model → part ("warm", "cold", …) → value; a NaN (undefined) part is left empty.
        rows: part → number of rows it rests on, written under the x axis (few rows: noise).
        metric: the y label.
        chance: a dashed reference line (0.5 for an AUC), None for none.

    Returns:
        a figure; bar i of group j is ``scores[model j][part i]``, labelled with its value.
    """
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError(f"scores must be a non-empty dict model -> {{part: value}}, got {scores!r:.80}")
    parts = list(dict.fromkeys(part for values in scores.values() for part in values))
    models = list(scores)
    width = 0.8 / len(parts)
    fig, ax = _new_axes(None, (3.2 + 0.8 * len(models) * len(parts), 3.6))
    for i, part in enumerate(parts):
        xs = np.arange(len(models)) + (i - (len(parts) - 1) / 2) * width
        values = np.array([scores[m].get(part, np.nan) for m in models], dtype=np.float64)
        label = part if rows is None or part not in rows else f"{part} ({rows[part]:,} rows)"
        bars = ax.bar(xs, np.nan_to_num(values, nan=0.0), width, color=_palette(i), label=label)
        for bar, value in zip(bars, values):
            if np.isfinite(value):
                ax.annotate(f"{value:.3f}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom",
                            fontsize=8, xytext=(0, 2), textcoords="offset points")
    if chance is not None:
        ax.axhline(chance, color="#555555", linestyle="--", linewidth=1, label=f"chance ({chance:g})")
    ax.set_xticks(range(len(models)), [_short(m) if len(models) > 3 else m for m in models], fontsize=8)
    ax.set_ylabel(metric)
    finite = [v for values in scores.values() for v in values.values() if np.isfinite(v)]
    low = min([*finite, chance if chance is not None else 1.0], default=0.0)
    ax.set_ylim(max(0.0, low - 0.1), min(1.05, max(finite, default=1.0) + 0.08) if finite else 1.0)
    ax.grid(alpha=0.3, axis="y")
    _legend_outside(ax)
    ax.set_title(f"{metric}: warm and cold items", fontsize=10)
    return fig


def plot_fusion(alphas: Sequence[float], curves: Mapping[str, Sequence[float]], alpha: float,
                items: Sequence[str], scores: Sequence[float], *, marked: Sequence[bool] | None = None,
                highlighted: Sequence[bool] | None = None, highlight_label: str = "cold item",
                ylabel: str = "HR@K", title: str = "") -> Figure:
    """A fused ranking at one α: the metric curves over α (left) and one user's list (right).

    The fused score pCTR^(1−α) pCVR^α moves from ranking by clicks (α = 0) through expected
    purchases pCTCVR (α = ½) to conversion once clicked (α = 1)
    (:class:`mtlkit.recommend.FusedRanking`).

    Args:
        alphas: the α grid of the curves.
        curves: name (e.g. "HR@10, click relevance") → metric at each α of ``alphas``.
        alpha: the α marked on the curves and used for the list.
        items: the list's item labels, best first; scores: their fused scores.
        marked: True where an item is relevant (prefixed with ✓).
        highlighted: True where an item is drawn in the second colour (e.g. a cold item).
        highlight_label: what the second colour means, in the list's legend.
        ylabel, title: the curves' y label and the list's title.
    """
    alphas = _to_numpy(alphas, "alphas")
    if alphas.ndim != 1 or len(alphas) == 0:
        raise ValueError(f"alphas must be a non-empty 1-D grid, got shape {alphas.shape}")
    for name, values in curves.items():
        if len(values) != len(alphas):
            raise ValueError(f"curves[{name!r}] must have one value per alpha ({len(alphas)}), got {len(values)}")
    if len(scores) != len(items):
        raise ValueError(f"scores must have one value per item ({len(items)}), got {len(scores)}")
    for name, flags in (("marked", marked), ("highlighted", highlighted)):
        if flags is not None and len(flags) != len(items):
            raise ValueError(f"{name} must have one flag per item ({len(items)}), got {len(flags)}")
    marked = [False] * len(items) if marked is None else [bool(m) for m in marked]
    highlighted = [False] * len(items) if highlighted is None else [bool(h) for h in highlighted]
    fig = NotebookFigure(figsize=(12.5, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.2])
    for i, (name, values) in enumerate(curves.items()):
        left.plot(alphas, values, marker="o", color=_palette(i), linestyle=_linestyle(i), label=name)
    left.axvline(alpha, color="black", linestyle="--", linewidth=1, label=f"alpha = {alpha:.2f}")
    left.set_xlabel("alpha (0: rank by pCTR, 0.5: by pCTCVR, 1: by pCVR)")
    left.set_ylabel(ylabel)
    left.grid(alpha=0.3)
    _legend_outside(left)
    positions = np.arange(len(items))[::-1]
    colors = [OKABE_ITO[4] if h else OKABE_ITO[5] for h in highlighted]
    right.barh(positions, scores, color=colors)
    right.set_yticks(positions, [f"{'✓ ' if m else ''}{_short(t, 28)}" for t, m in zip(items, marked)], fontsize=8)
    right.set_xlabel("fused score pCTR^(1-alpha) pCVR^alpha")
    right.set_title(title or f"top {len(items)} at alpha = {alpha:.2f}", fontsize=10)
    _legend_outside(right, handles=[Patch(color=OKABE_ITO[5], label="other item"),
                                    Patch(color=OKABE_ITO[4], label=highlight_label)])
    return fig
