"""Evaluation: one forward pass over a split feeds the per-task metrics and the summaries.

:func:`predict_outputs` runs the model over a split in eval mode (sharded and all-gathered
under DDP) and returns the raw outputs on the device; :func:`task_metrics` and
:func:`mtlkit.summaries.summarize` both read those outputs, so a report of a split costs one
forward pass. :func:`warm_cold_metrics` splits the same outputs by whether the item was seen
in training (the cold-start comparison of notebook 11 and ``benchmarks/reproduce_cold_start.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor, nn

from mtlkit import metrics
from mtlkit.data.batch import IS_COLD_ITEM, LABEL_MASK, LABELS, USER
from mtlkit.training.distributed import DistributedContext, all_gather_rows

if TYPE_CHECKING:
    from mtlkit.data.tensors import TensorSamples

__all__ = ["ITEM_PARTS", "PartMetrics", "predict_outputs", "report", "task_metrics", "warm_cold_metrics"]

#: The two parts of a split in a cold-start evaluation: rows of items seen in training, and the others.
ITEM_PARTS = ("warm", "cold")


@torch.no_grad()
def predict_outputs(
    model: nn.Module,
    samples: TensorSamples,
    task_names: Sequence[str],
    *,
    batch_size: int,
    autocast: Callable[[], contextlib.AbstractContextManager],
    context: DistributedContext = DistributedContext(),
) -> dict[str, Tensor]:
    """Raw model outputs (logits / values) for every row of ``samples``: float32 ``(N,)`` on its device.

    Under DDP each rank predicts a contiguous shard and the shards are all-gathered, so every
    rank ends with the full predictions in the original order. The model's train/eval mode
    is restored afterwards.
    """
    index = torch.arange(len(samples), device=samples.device)
    shards = torch.tensor_split(index, context.world_size) if context.enabled else (index,)
    was_training = model.training
    model.eval()
    parts: dict[str, list[Tensor]] = {t: [] for t in task_names}
    try:
        for rows in torch.split(shards[context.rank], batch_size):
            with autocast():
                outputs = model(samples.gather(rows))
            for t in task_names:
                parts[t].append(outputs[t].float())
    finally:
        model.train(was_training)
    local = {t: torch.cat(parts[t]) if parts[t] else torch.zeros(0, device=samples.device) for t in task_names}
    if not context.enabled:
        return local
    sizes = [len(s) for s in shards]
    return {t: all_gather_rows(local[t], sizes) for t in task_names}


def task_metrics(outputs: Mapping[str, Tensor], samples: TensorSamples,
                 task_kinds: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """Per-task metrics (:data:`mtlkit.metrics.TASK_METRICS`) over observed labels only.

    Binary tasks: ``auc``, ``logloss`` and ``gauc`` (AUC per user, weighted by the user's
    samples; Zhou et al., KDD 2018) from logits; regression tasks: ``rmse`` and ``mae``. A
    metric undefined on this split (e.g. AUC with one class) is NaN. The outputs stay on the
    device until the accumulators read them (one transfer per task).
    """
    labels, mask, users = samples[LABELS], samples[LABEL_MASK], samples[USER]
    result: dict[str, dict[str, float]] = {}
    for i, (task, kind) in enumerate(task_kinds.items()):
        if kind == "binary":
            accumulator = metrics.make_accumulator(kind, from_logits=True)
            accumulator.update(outputs[task], labels[:, i], mask[:, i], groups=users)
        else:
            accumulator = metrics.make_accumulator(kind)
            accumulator.update(outputs[task], labels[:, i], mask[:, i])
        result[task] = _metric_values(accumulator, kind, outputs[task], labels[:, i], mask[:, i], users)
    return result


class PartMetrics(NamedTuple):
    """The metrics of one part of a split: its number of rows and :func:`task_metrics` on them."""

    rows: int
    tasks: dict[str, dict[str, float]]


def warm_cold_metrics(outputs: Mapping[str, Tensor], samples: TensorSamples,
                      task_kinds: Mapping[str, str]) -> dict[str, PartMetrics]:
    """Per-task metrics on the rows of *warm* items (seen in training) and of *cold* ones.

    An item first seen after the training period has no trained ID embedding (its index is 0,
    see :mod:`mtlkit.data.batch`), so a model's quality on it is the cold-start question
    (Schein et al., "Methods and Metrics for Cold-Start Recommendations", SIGIR 2002). The rows
    are told apart by the ``is_cold_item`` key; both parts are read from one set of outputs.

    Args:
        outputs: the model's raw outputs for every row of ``samples`` (:func:`predict_outputs`).
        samples: the split, with ``is_cold_item``.
        task_kinds: task name -> "binary" or "regression", in the label columns' order.

    Returns:
        ``{"warm": PartMetrics, "cold": PartMetrics}``; a part without rows, or a metric undefined
        on a part (an AUC of one class), is NaN.

    Raises:
        ValueError: ``samples`` lacks the ``is_cold_item`` key.
    """
    if IS_COLD_ITEM not in samples:
        raise ValueError(f"samples must have the {IS_COLD_ITEM!r} key to split warm from cold items, "
                         f"got keys {sorted(samples.keys())}")
    cold = samples[IS_COLD_ITEM].bool()
    parts = {}
    for part, rows in zip(ITEM_PARTS, (~cold, cold)):
        index = torch.nonzero(rows).reshape(-1)
        if len(index) == 0:
            tasks = {task: dict.fromkeys(metrics.TASK_METRICS[kind], float("nan")) for task, kind in task_kinds.items()}
        else:
            tasks = task_metrics({t: v[index] for t, v in outputs.items()}, samples.subset(index), task_kinds)
        parts[part] = PartMetrics(len(index), tasks)
    return parts


def report(outputs: Mapping[str, Tensor], samples: TensorSamples, task_kinds: Mapping[str, str]) -> dict[str, Any]:
    """``{"tasks": task_metrics(...), "summary": summarize(...)}`` from one set of outputs."""
    from mtlkit.summaries import summarize

    tasks = task_metrics(outputs, samples, task_kinds)
    return {"tasks": tasks, "summary": summarize(tasks, task_kinds, outputs, samples[LABELS], samples[LABEL_MASK])}


def _metric_values(accumulator: Any, kind: str, pred: Tensor, target: Tensor, mask: Tensor,
                   users: Tensor) -> dict[str, float]:
    """The task's metrics from its accumulator; undefined ones (e.g. AUC of one class) are NaN."""
    names = metrics.TASK_METRICS[kind]
    try:
        values = accumulator.compute()
        return {name: float(values[name]) for name in names}
    except ValueError:
        pass
    # Some metric is undefined on this split: compute each one alone, NaN where undefined.
    observed = mask.bool()
    if not bool(observed.any()):
        return dict.fromkeys(names, float("nan"))
    y, p = target[observed], pred[observed]
    functions: dict[str, Callable[[], float]]
    if kind == "binary":
        functions = {
            "auc": lambda: metrics.roc_auc(y, p),
            "logloss": lambda: metrics.log_loss(y, torch.sigmoid(p)),
            "gauc": lambda: metrics.group_auc(y, p, users[observed]),
        }
    else:
        functions = {"rmse": lambda: metrics.rmse(y, p), "mae": lambda: metrics.mae(y, p)}
    result = {}
    for name in names:
        try:
            result[name] = float(functions[name]())
        except ValueError:
            result[name] = float("nan")
    return result
