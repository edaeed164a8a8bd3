"""Summaries across tasks: macro and micro averages of comparable metrics.

A multi-task model has one metric per task; a single number helps to compare models, if it
is honest about what it averages. Two averages, as in multi-label classification (Manning,
Raghavan & Schütze, 2008, "Introduction to Information Retrieval", §13.6):

    macro_m = (1/|T|) Σ_{t∈T} m(y_t, ŷ_t)               every task counts the same
    micro_m = m( ⋃_{t∈T} (y_t, ŷ_t) )                   every observed label counts the same

Macro answers "how good is the model on a typical task"; micro is dominated by the tasks with
the most observed labels (a click task observed on every impression outweighs a purchase
task observed on few). A micro AUC ranks the pooled scores of all tasks against each other, so
it also rewards tasks for being calibrated to each other's base rates — read it with care.

Only metrics on the same scale can be averaged: AUC and log-loss over *binary* tasks (and
RMSE / MAE over regression tasks in the same units). Averaging an RMSE of ratings with a
click AUC is meaningless, and every function here refuses it with a ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from mtlkit import metrics as M
from mtlkit.metrics import METRIC_KINDS

__all__ = ["METRIC_KINDS", "POOLABLE", "macro_average", "micro_average", "summarize"]

#: Metrics that can be pooled over samples (micro); gAUC is a per-user average already.
POOLABLE = ("auc", "logloss", "rmse", "mae")


def _check_metric(metric: str, choices: Sequence[str]) -> None:
    if metric not in choices:
        raise ValueError(f"metric must be one of {list(choices)}, got {metric!r}")


def _tasks_for(metric: str, task_kinds: Mapping[str, str], tasks: Sequence[str] | None) -> list[str]:
    """The tasks averaged for ``metric``: those given (all must be of the metric's kind), or
    by default every task of the metric's kind."""
    kind = METRIC_KINDS[metric]
    if tasks is None:
        return [t for t, k in task_kinds.items() if k == kind]
    tasks = list(tasks)
    for task in tasks:
        if task not in task_kinds:
            raise ValueError(f"tasks must be among {list(task_kinds)}, got {task!r}")
        if task_kinds[task] != kind:
            raise ValueError(
                f"tasks must all be {kind} tasks to average {metric!r}, got {task!r} ({task_kinds[task]}): "
                f"a {metric} cannot be pooled with the metrics of {task_kinds[task]} tasks"
            )
    return tasks


def macro_average(
    task_metrics: Mapping[str, Mapping[str, float]], metric: str, tasks: Sequence[str] | None = None
) -> float:
    """Mean of ``metric`` over tasks: ``(1/|T|) Σ_t task_metrics[t][metric]``.

    Args:
        task_metrics: ``{task: {metric: value}}`` as returned by ``Trainer.evaluate``.
        metric: "auc", "gauc", "logloss", "rmse" or "mae".
        tasks: the tasks to average (default: every task that reports ``metric``).

    Returns:
        the mean (NaN when a task's value is NaN; NaN when no task reports the metric).

    Raises:
        ValueError: a named task does not report ``metric`` — e.g. asking for the macro AUC
            of a regression task, which would pool an AUC with an RMSE.
    """
    _check_metric(metric, tuple(METRIC_KINDS))
    if tasks is None:
        tasks = [t for t, values in task_metrics.items() if metric in values]
    values = []
    for task in tasks:
        if task not in task_metrics or metric not in task_metrics[task]:
            reported = sorted(task_metrics.get(task, {}))
            raise ValueError(
                f"tasks must all report {metric!r}, got {task!r} with {reported}: "
                "metrics of different kinds (e.g. AUC and RMSE) cannot be averaged"
            )
        values.append(float(task_metrics[task][metric]))
    return sum(values) / len(values) if values else math.nan


def micro_average(
    predictions: Mapping[str, Tensor],
    labels: Tensor,
    label_mask: Tensor,
    task_kinds: Mapping[str, str],
    metric: str,
    tasks: Sequence[str] | None = None,
) -> float:
    """``metric`` of all observed (label, prediction) pairs of ``tasks`` pooled together.

    Args:
        predictions: ``{task: (N,)}`` logits for binary tasks (as the models output), values
            for regression tasks.
        labels, label_mask: ``(N, n_tasks)`` in the order of ``task_kinds``.
        task_kinds: ``{task: "binary" | "regression"}`` in column order.
        metric: "auc", "logloss", "rmse" or "mae".
        tasks: the tasks to pool (default: every task of the metric's kind).

    Raises:
        ValueError: a task of another kind is named (pooling an AUC with an RMSE), or an
            unknown metric. An undefined pooled metric (one class only) gives NaN.
    """
    _check_metric(metric, POOLABLE)
    tasks = _tasks_for(metric, task_kinds, tasks)
    columns = {task: i for i, task in enumerate(task_kinds)}
    ys, ps = [], []
    for task in tasks:
        observed = label_mask[:, columns[task]].bool()
        ys.append(labels[:, columns[task]][observed].float().cpu())
        ps.append(predictions[task][observed].float().cpu())
    if not ys or not sum(len(y) for y in ys):
        return math.nan
    y, p = torch.cat(ys), torch.cat(ps)
    function = {
        "auc": lambda: M.roc_auc(y, p),
        "logloss": lambda: M.log_loss(y, torch.sigmoid(p)),
        "rmse": lambda: M.rmse(y, p),
        "mae": lambda: M.mae(y, p),
    }[metric]
    try:
        return float(function())
    except ValueError:  # e.g. a single class: the AUC is undefined
        return math.nan


def summarize(
    task_metrics: Mapping[str, Mapping[str, float]],
    task_kinds: Mapping[str, str],
    predictions: Mapping[str, Tensor] | None = None,
    labels: Tensor | None = None,
    label_mask: Tensor | None = None,
) -> dict[str, dict[str, float]]:
    """Macro and micro averages of the comparable metrics.

    For every metric kind with at least two tasks (the binary tasks' AUC, gAUC and log-loss;
    the regression tasks' RMSE and MAE when there are two or more of them): the macro average
    from ``task_metrics`` and, when predictions and labels are given, the micro average.

    Returns:
        ``{"macro": {"auc": ..., ...}, "micro": {"auc": ..., ...}, "tasks": {"binary": [...], ...}}``
        ("micro" is empty without predictions).
    """
    result: dict[str, dict] = {"macro": {}, "micro": {}, "tasks": {}}
    for kind in ("binary", "regression"):
        tasks = [t for t, k in task_kinds.items() if k == kind]
        if len(tasks) < 2:
            continue
        result["tasks"][kind] = tasks
        for metric, metric_kind in METRIC_KINDS.items():
            if metric_kind != kind or not all(metric in task_metrics.get(t, {}) for t in tasks):
                continue
            result["macro"][metric] = macro_average(task_metrics, metric, tasks)
            if predictions is not None and labels is not None and label_mask is not None and metric in POOLABLE:
                result["micro"][metric] = micro_average(predictions, labels, label_mask, task_kinds, metric, tasks)
    return result
