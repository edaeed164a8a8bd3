"""Evaluation: one forward pass over a split feeds the per-task metrics and the summaries.

:func:`predict_outputs` runs the model over a split in eval mode (sharded and all-gathered
under DDP) and returns the raw outputs on the device; :func:`task_metrics` and
:func:`mtlkit.summaries.summarize` both read those outputs, so a report of a split costs one
forward pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from mtlkit import metrics
from mtlkit.data.batch import LABEL_MASK, LABELS, USER
from mtlkit.training.distributed import DistributedContext, all_gather_rows

if TYPE_CHECKING:
    from mtlkit.data.tensors import TensorSamples

__all__ = ["predict_outputs", "report", "task_metrics"]


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
