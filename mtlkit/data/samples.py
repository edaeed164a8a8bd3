"""The former home of the multi-task samples, split by concern; its names still import from here.

Where each now lives:

* the batch contract — the key constants ``USER``, ``ITEM``, ``SPARSE``, ``DENSE``, ``HISTORY``,
  ``HISTORY_PADDING_MASK``, ``LABELS``, ``LABEL_MASK``, ``IS_COLD_ITEM``, ``TIMESTAMP``,
  ``ITEM_CONTENT``, ``IS_BOT``, ``IS_FEMALE``, ``GROUND_TRUTH`` and the ``Batch`` dict:
  :mod:`mtlkit.data.batch`;
* :class:`TaskSpec`, :class:`FeatureSchema`: :mod:`mtlkit.data.schema`;
* :class:`TensorSamples`, :class:`MultiTaskData`: :mod:`mtlkit.data.tensors`;
* :data:`TASK_RECIPES`: :mod:`mtlkit.data.tasks`;
* :data:`SPLITS`: :mod:`mtlkit.data.splits`;
* :func:`build_multitask_data`: :mod:`mtlkit.data.builder`.

Users, notebooks and benchmarks that import these names from ``mtlkit.data.samples`` keep
working; new code imports them from their home.
"""

from __future__ import annotations

from mtlkit.data.batch import (
    DENSE, GROUND_TRUTH, HISTORY, HISTORY_PADDING_MASK, IS_BOT, IS_COLD_ITEM, IS_FEMALE, ITEM,
    ITEM_CONTENT, LABEL_MASK, LABELS, SPARSE, TIMESTAMP, USER,
)  # fmt: skip
from mtlkit.data.builder import build_multitask_data
from mtlkit.data.schema import FeatureSchema, TaskSpec
from mtlkit.data.splits import SPLITS
from mtlkit.data.tasks import TASK_RECIPES
from mtlkit.data.tensors import MultiTaskData, TensorSamples

__all__ = [
    "TaskSpec", "FeatureSchema", "TensorSamples", "MultiTaskData", "TASK_RECIPES", "SPLITS",
    "build_multitask_data", "USER", "ITEM", "SPARSE", "DENSE", "HISTORY", "HISTORY_PADDING_MASK",
    "LABELS", "LABEL_MASK", "IS_COLD_ITEM", "TIMESTAMP", "ITEM_CONTENT", "IS_BOT", "IS_FEMALE",
    "GROUND_TRUTH",
]  # fmt: skip
